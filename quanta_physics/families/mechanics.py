"""Mechanics: forces and what they do (Newton's laws, weight, friction, springs, pressure,
gravitation, circular motion)."""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import random

from quanta_physics.families.base import Calc, Family, Topic, Worked, num

_PLANETS = (("the Moon", 1.62), ("Mars", 3.71), ("Mercury", 3.7), ("Venus", 8.87),
            ("Jupiter", 24.79), ("Saturn", 10.44), ("Neptune", 11.15))
_MATERIALS = (("aluminium", 2700), ("iron", 7870), ("copper", 8960), ("lead", 11340),
              ("brass", 8500), ("granite", 2750), ("steel", 7850))


def _newton_second_law(rng: random.Random) -> Worked:
    m, a = rng.randint(2, 80), round(rng.uniform(0.5, 9.5), 1)
    f = Calc(f"{m}*{a}")
    return Worked({"m": m, "a": num(a)},
                  ("Newton's second law: F = ma.", f"F = {f} N."), f.value, "N")


def _pendulum_period(rng: random.Random) -> Worked:
    length = round(rng.uniform(0.2, 3.0), 2)
    t = Calc(f"2*pi*sqrt({length}/9.8)")
    return Worked({"L": num(length)}, ("T = 2π √(L/g).", f"T = {t} s."), t.value, "s")


def _weight_on_planet(rng: random.Random) -> Worked:
    w_earth, (planet, g) = rng.randint(150, 1100), rng.choice(_PLANETS)
    m = Calc(f"{w_earth}/9.8")
    w = Calc(f"{num(m.value, 4)}*{g}")
    return Worked({"w": w_earth, "planet": planet, "g": num(g, 4)},
                  ("The mass is the same everywhere: m = W/g on Earth, then W' = m g' on the "
                   "other body.", f"m = {m} kg.", f"W' = {w} N."), w.value, "N")


def _friction_acceleration(rng: random.Random) -> Worked:
    m, mu = rng.randint(2, 50), round(rng.uniform(0.1, 0.6), 2)
    push = round(mu * m * 9.8 * rng.uniform(1.3, 3.0))
    f = Calc(f"{mu}*{m}*9.8")
    a = Calc(f"({push} - {num(f.value, 4)})/{m}")
    return Worked({"m": m, "mu": num(mu), "F": push},
                  ("Kinetic friction f = μmg opposes the push; then a = (F − f)/m.",
                   f"f = {f} N.", f"a = {a} m/s²."), a.value, "m/s^2")


def _incline_force_kn(rng: random.Random) -> Worked:
    m, angle = rng.randrange(800, 2050, 50), rng.randint(3, 25)
    f = Calc(f"{m}*9.8*sin(radians({angle}))/1000")
    return Worked({"m": m, "angle": angle},
                  ("The component of the weight along the slope is mg sin θ; divide newtons "
                   "by 1000 for kN.", f"F = {f} kN."), f.value, "kN")


def _spring_extension_cm(rng: random.Random) -> Worked:
    m_g, k = rng.randrange(100, 810, 10), rng.randint(20, 200)
    x = Calc(f"{m_g}/1000*9.8/{k}*100")
    return Worked({"m": m_g, "k": k},
                  ("At rest the spring force balances the weight: kx = mg, so x = mg/k, with "
                   "m in kg (g ÷ 1000); × 100 for cm.", f"x = {x} cm."), x.value, "cm")


def _centripetal_force(rng: random.Random) -> Worked:
    m_g, v, r_cm = rng.randrange(50, 510, 10), round(rng.uniform(2.0, 12.0), 1), \
        rng.randint(30, 150)
    f = Calc(f"{m_g}/1000*{v}**2/({r_cm}/100)")
    return Worked({"m": m_g, "v": num(v), "r": r_cm},
                  ("F = mv²/r, with m in kg (g ÷ 1000) and r in m (cm ÷ 100).",
                   f"F = {f} N."), f.value, "N")


def _pressure_cm2(rng: random.Random) -> Worked:
    force, area = rng.randint(100, 1500), rng.randint(5, 100)
    p = Calc(f"{force}/({area}/10000)/1000")
    return Worked({"F": force, "A": area},
                  ("p = F/A, with A in m² (cm² ÷ 10000); divide pascals by 1000 for kPa.",
                   f"p = {p} kPa."), p.value, "kPa")


def _mass_from_density(rng: random.Random) -> Worked:
    (material, rho), dims = rng.choice(_MATERIALS), [rng.randint(2, 30) for _ in range(3)]
    m = Calc(f"{rho}*{dims[0]}*{dims[1]}*{dims[2]}/1000000")
    return Worked({"material": material, "rho": rho, "a": dims[0], "b": dims[1],
                   "c": dims[2]},
                  ("m = ρV, with V in m³ (cm³ ÷ 1000000).", f"m = {m} kg."), m.value, "kg")


def _apparent_weight_in_water(rng: random.Random) -> Worked:
    (material, rho), volume = rng.choice(_MATERIALS), rng.randrange(20, 1010, 10)
    m_g = round(rho * volume / 1000)
    w = Calc(f"{m_g}/1000*9.8")
    b = Calc(f"1000*{volume}/1000000*9.8")
    apparent = Calc(f"{num(w.value, 4)} - {num(b.value, 4)}")
    return Worked({"material": material, "m": m_g, "V": volume},
                  ("Apparent weight = weight − buoyant force, where the buoyant force is the "
                   "weight of displaced water, ρ_water V g (V in m³: cm³ ÷ 1000000).",
                   f"Weight = {w} N.", f"Buoyant force = {b} N.",
                   f"Apparent weight = {apparent} N."), apparent.value, "N")


def _hydrostatic_pressure_atm(rng: random.Random) -> Worked:
    depth = rng.randint(2, 200)
    p = Calc(f"(101325 + 1025*9.8*{depth})/101325")
    return Worked({"d": depth},
                  ("Absolute pressure p = p_atm + ρgh; divide pascals by 101325 for atm.",
                   f"p = {p} atm."), p.value, "atm")


def _lever_balance_force(rng: random.Random) -> Worked:
    m, d1, d2 = rng.randint(5, 120), rng.randint(10, 60), rng.randint(60, 250)
    f = Calc(f"{m}*9.8*{d1}/{d2}")
    return Worked({"m": m, "d1": d1, "d2": d2},
                  ("Balance the moments about the pivot: F d2 = mg d1, so F = mg d1/d2 (the "
                   "distance units cancel).", f"F = {f} N."), f.value, "N")


def _satellite_gravity_force(rng: random.Random) -> Worked:
    m, h_km = rng.randrange(100, 5100, 100), rng.randrange(200, 36100, 100)
    f = Calc(f"6.674e-11*5.97e24*{m}/((6371 + {h_km})*1000)**2")
    return Worked({"m": m, "h": h_km},
                  ("F = GMm/r², where r is measured from Earth's centre: r = R + h, in metres "
                   "(km × 1000).", f"F = {f} N."), f.value, "N")


def _orbital_speed(rng: random.Random) -> Worked:
    h_km = rng.randrange(200, 36100, 100)
    v = Calc(f"sqrt(6.674e-11*5.97e24/((6371 + {h_km})*1000))")
    return Worked({"h": h_km},
                  ("Gravity provides the centripetal force: GMm/r² = mv²/r, so v = √(GM/r), "
                   "with r = R + h in metres.", f"v = {v} m/s."), v.value, "m/s")


_EARTH = "G = 6.674 × 10^-11 N m^2/kg^2, M = 5.97 × 10^24 kg and R = 6371 km"

FAMILIES: tuple[Family, ...] = (
    Family("newton_second_law", Topic.MECHANICS, (
        "What net force gives a {m} kg crate an acceleration of {a} m/s^2?",
        "A {m} kg trolley accelerates at {a} m/s^2. What resultant force acts on it?",
        "Find the unbalanced force needed to accelerate a mass of {m} kg at {a} m/s^2.",
        "A {m} kg sprinter drives off the starting blocks and picks up pace at {a} m/s². "
        "What resultant force acts on her?",
        "On a level air track in the lab, a motor tows a {m} kilogram glider so that it gains "
        "speed at a steady {a} metres per second squared. What net force does the glider feel?",
        "What is the resultant force, in newtons? Data: mass = {m} kg, acceleration = "
        "{a} m/s^2.",
        "Quick one: a {m} kg object accelerates at {a} m/s^2. Net force on it?",
        "Pushing a stalled {m} kg go-kart, two friends get it speeding up at {a} m/s². How "
        "much net force are they supplying?",
    ), _newton_second_law),
    Family("pendulum_period", Topic.MECHANICS, (
        "What is the period of a simple pendulum {L} m long? Use g = 9.8 m/s^2.",
        "A bob hangs from a light string of length {L} m and swings with small amplitude. How "
        "long does one full oscillation take? (g = 9.8 m/s^2)",
        "Taking g = 9.8 m/s^2, find the time period of a {L} m simple pendulum.",
        "A physics student ties a small lead weight to a {L} m thread and sets it swinging "
        "through a small arc. Taking g = 9.8 m/s², what period should her stopwatch show?",
        "The pendulum of a grandfather clock behaves like a simple pendulum {L} metres long. "
        "With g = 9.8 m/s^2, how many seconds does each full swing cycle last?",
        "How long is one period, in seconds? A simple pendulum of length {L} m oscillates "
        "with small amplitude; g = 9.8 m/s².",
        "Quick one: simple pendulum, L = {L} m, g = 9.8 m/s^2. Period?",
        "A lamp hangs from the ceiling on a {L} m cord and is nudged so that it swings "
        "gently. Treating it as a simple pendulum with g = 9.8 m/s², how many seconds does a "
        "complete back-and-forth take?",
    ), _pendulum_period),
    Family("weight_on_planet", Topic.MECHANICS, (
        "An astronaut weighs {w} N on Earth (g = 9.8 m/s^2). What does she weigh on "
        "{planet}, where g = {g} m/s^2?",
        "A rover has a weight of {w} N on Earth, where g = 9.8 m/s^2. The gravitational "
        "field strength on {planet} is {g} m/s^2. What is its weight there?",
        "Weight on Earth: {w} N (g = 9.8 m/s^2). Surface gravity on {planet}: {g} m/s^2. "
        "Find the weight on {planet}.",
        "A bathroom scale on Earth (g = 9.8 m/s²) reads {w} N for a crate of samples. If the "
        "crate is shipped to {planet}, with surface gravity {g} m/s², what force will it "
        "press on the ground with?",
    ), _weight_on_planet),
    Family("friction_acceleration", Topic.MECHANICS, (
        "A {m} kg box is pushed across a floor with a horizontal force of {F} N. The "
        "coefficient of kinetic friction is {mu}. What is its acceleration? Use g = 9.8 m/s^2.",
        "A horizontal {F} N pull drags a {m} kg sledge over snow, where μ = {mu}. Taking "
        "g = 9.8 m/s^2, find the sledge's acceleration.",
        "Mass {m} kg, applied horizontal force {F} N, kinetic friction coefficient {mu}, "
        "g = 9.8 m/s^2: calculate the acceleration.",
        "A removal man drags a {m} kg sofa over a wooden floor with a horizontal pull of "
        "{F} N. The coefficient of kinetic friction between sofa and floor is {mu}. At what "
        "rate does the sofa gain speed? (g = 9.8 m/s^2)",
        "In a lab, a horizontal string pulls a {m} kilogram wooden block along a bench with "
        "a force of {F} N. The coefficient of kinetic friction is {mu}. Using g = 9.8 m/s², "
        "find the block's acceleration.",
        "What acceleration results? A horizontal force of {F} N acts on a {m} kg mass sliding "
        "over a rough surface with μk = {mu}; g = 9.8 m/s^2.",
        "Quick one: {F} N horizontal push on {m} kg, kinetic friction coefficient {mu}, "
        "g = 9.8 m/s². Acceleration?",
        "A worker shoves a {m} kg crate along a warehouse floor with {F} N, horizontally. "
        "Friction between crate and floor has μk = {mu}. How quickly does the crate speed up, "
        "in m/s²? (g = 9.8 m/s²)",
    ), _friction_acceleration),
    Family("incline_force_kn", Topic.MECHANICS, (
        "A {m} kg car is parked on a hill inclined at {angle}° to the horizontal. What is the "
        "component of its weight along the slope, in kN? Use g = 9.8 m/s^2.",
        "A {m} kg trailer rests on a ramp at {angle}°. How large, in kilonewtons, is the "
        "force of gravity acting down the ramp? (g = 9.8 m/s^2)",
        "Find the component of weight parallel to a {angle}° incline for a mass of {m} kg, "
        "in kN, taking g = 9.8 m/s^2.",
        "A winch holds a {m} kg motorboat on a slipway that slopes at {angle}° to the "
        "horizontal. What is the component of the boat's weight along the slipway, in kN? "
        "(g = 9.8 m/s^2)",
        "A {m} kg concrete block rests on a construction ramp tilted {angle} degrees from the "
        "horizontal. Taking g = 9.8 m/s², how many kilonewtons of its weight act parallel "
        "to the ramp?",
        "What is the downhill component of the weight, in kN? Mass: {m} kg. Slope angle: "
        "{angle}°. g = 9.8 m/s².",
        "Quick one: {m} kg on a {angle}° slope, g = 9.8 m/s^2. Weight component along the "
        "slope in kN?",
        "A {m} kg van must be held by its handbrake on a street that climbs at {angle}°. What "
        "force, in kN, must the brake supply to stop it rolling back? (g = 9.8 m/s², ignore "
        "rolling resistance)",
    ), _incline_force_kn),
    Family("spring_extension_cm", Topic.MECHANICS, (
        "A {m} g mass hangs at rest from a spring with spring constant {k} N/m. How far is "
        "the spring stretched, in cm? Use g = 9.8 m/s^2.",
        "A spring of stiffness {k} N/m supports a {m} g weight. Taking g = 9.8 m/s^2, find "
        "its extension in centimetres.",
        "Hooke's law: a load of mass {m} g is hung from a spring with k = {k} N/m. What is "
        "the extension in cm? (g = 9.8 m/s^2)",
        "A {m} g toy dangles from a spring (k = {k} N/m) clipped to a baby's cot mobile. "
        "When it finally hangs motionless, how far is the spring extended, in cm? Use "
        "g = 9.8 m/s².",
        "In a lab practical, {m} grams of slotted masses are hung from a spring of stiffness "
        "{k} N/m. Taking g = 9.8 m/s^2, what equilibrium extension, in centimetres, should "
        "be measured?",
        "By how many cm does the spring stretch? Load: {m} g, hanging at rest; spring "
        "constant: {k} N/m; g = 9.8 m/s^2.",
        "Quick one: k = {k} N/m, hanging mass {m} g, g = 9.8 m/s². Extension in cm?",
        "A student hangs a {m} g bag of sugar on a spring balance whose spring constant is "
        "{k} N/m. Once it stops bouncing, by how many centimetres has the spring lengthened? "
        "Take g as 9.8 m/s².",
    ), _spring_extension_cm),
    Family("centripetal_force", Topic.MECHANICS, (
        "A {m} g ball on a string moves in a horizontal circle of radius {r} cm at {v} m/s. "
        "What is the tension providing the centripetal force?",
        "A {m} g toy car goes round a circular track of radius {r} cm at a constant {v} m/s. "
        "What centripetal force acts on it?",
        "Mass {m} g, speed {v} m/s, radius of circular path {r} cm: find the centripetal "
        "force in newtons.",
        "A shepherd whirls a {m} g stone in a sling around a circle of radius {r} cm at "
        "{v} m/s. What centripetal force, in newtons, must the sling provide?",
        "In a lab demonstration, a {m} gram rubber bung is whirled on a string through a "
        "horizontal circle of radius {r} centimetres at a steady {v} metres per second. What "
        "centripetal force does it need?",
        "What centripetal force is needed, in N? An object of mass {m} g travels at {v} m/s "
        "around a circle of radius {r} cm.",
        "Quick one: {m} g moving at {v} m/s on a circle of radius {r} cm. Centripetal force?",
        "On a spinning fairground ride, a {m} g bag swings in a circle {r} cm in radius with "
        "a speed of {v} m/s. How many newtons of inward force keep it on that path?",
    ), _centripetal_force),
    Family("pressure_from_area_cm2", Topic.MECHANICS, (
        "A force of {F} N acts evenly on an area of {A} cm^2. What pressure does it exert, "
        "in kPa?",
        "A {F} N crate rests on a base of area {A} cm^2. Find the pressure under it in "
        "kilopascals.",
        "Calculate the pressure in kPa when {F} N is spread over {A} cm^2.",
        "A piston with a face of {A} cm² is pushed by a rod with {F} N of force. What "
        "pressure, in kPa, does the piston apply to the fluid?",
    ), _pressure_cm2),
    Family("mass_from_density", Topic.MECHANICS, (
        "A rectangular block of {material} (density {rho} kg/m^3) measures {a} cm × {b} cm × "
        "{c} cm. What is its mass in kg?",
        "What is the mass of a {a} cm by {b} cm by {c} cm slab of {material}, whose density "
        "is {rho} kg/m^3?",
        "Density {rho} kg/m^3, block dimensions {a} cm, {b} cm and {c} cm: find the mass of "
        "the {material} block in kilograms.",
        "A sculptor orders a {a} cm × {b} cm × {c} cm block of {material} for a plinth. If "
        "{material} has a density of {rho} kg/m³, what is the block's mass in kg?",
        "A truck driver must load a solid {material} ingot measuring {a} cm by {b} cm by "
        "{c} cm. With a density of {rho} kilograms per cubic metre, how many kilograms is "
        "the ingot?",
        "How many kilograms? A solid {material} bar is {a} cm long, {b} cm wide and {c} cm "
        "tall, and its density is {rho} kg/m^3.",
        "Quick one: {material}, ρ = {rho} kg/m^3, {a} × {b} × {c} cm. Mass in kg?",
        "A metalworker cuts a cuboid of {material} with edges of {a}, {b} and {c} cm. "
        "Given that the material's density is {rho} kg/m³, how many kilograms does it weigh "
        "on a balance?",
    ), _mass_from_density),
    Family("apparent_weight_in_water", Topic.MECHANICS, (
        "A {m} g piece of {material} with volume {V} cm^3 hangs from a spring scale, fully "
        "submerged in water (density 1000 kg/m^3). What does the scale read? Use "
        "g = 9.8 m/s^2.",
        "A {material} object of mass {m} g and volume {V} cm^3 is lowered completely into "
        "water of density 1000 kg/m^3. Taking g = 9.8 m/s^2, find its apparent weight.",
        "Mass {m} g, volume {V} cm^3, fully immersed in water (1000 kg/m^3), g = 9.8 m/s^2: "
        "calculate the apparent weight in newtons.",
        "In a buoyancy experiment, a student hangs a {m} g lump of {material} (volume "
        "{V} cm^3) from a newton meter and lowers it until it is fully under the water in a "
        "beaker (water density 1000 kg/m^3). With g = 9.8 m/s^2, what does the meter read?",
        "A crane slowly hoists a casting made of {material}, of mass {m} grams and volume "
        "{V} cm³, up through a freshwater test tank (1000 kg/m³) at constant speed. While it is "
        "still completely submerged, what is the tension in the cable? (g = 9.8 m/s², ignore "
        "drag)",
        "What is the apparent weight, in N, of a fully submerged {material} object? Its mass "
        "is {m} g and its volume {V} cm^3; water density is 1000 kg/m^3 and g = 9.8 m/s^2.",
        "Quick one: {m} g of {material}, {V} cm³, fully under water (1000 kg/m³), "
        "g = 9.8 m/s². Apparent weight?",
        "A diver holds a {material} weight of {m} g, {V} cm³ in volume, under the surface of "
        "a freshwater lake (ρ = 1000 kg/m³). How much force must she exert to keep it from "
        "sinking? (g = 9.8 m/s²)",
    ), _apparent_weight_in_water),
    Family("hydrostatic_pressure_atm", Topic.MECHANICS, (
        "What is the absolute pressure, in atm, at a depth of {d} m in seawater of density "
        "1025 kg/m^3? Take atmospheric pressure as 101325 Pa = 1 atm and g = 9.8 m/s^2.",
        "A submarine is {d} m below the sea surface. With seawater density 1025 kg/m^3, "
        "g = 9.8 m/s^2 and 1 atm = 101325 Pa at the surface, what total pressure acts on its "
        "hull, in atmospheres?",
        "Seawater density 1025 kg/m^3, depth {d} m, surface pressure 101325 Pa (1 atm), "
        "g = 9.8 m/s^2: find the absolute pressure in atm.",
        "A sperm whale dives to {d} metres below the sea surface, where the water density is "
        "1025 kg/m^3. Taking g = 9.8 m/s^2 and the air pressure at the surface as "
        "101325 Pa (1 atm), what absolute pressure does the whale feel, in atm?",
        "A research ROV hovers {d} m beneath the waves (seawater ρ = 1025 kg/m³, "
        "g = 9.8 m/s²). If surface air pressure is 101325 Pa, which is 1 atm, what total "
        "pressure in atm acts on its camera housing?",
        "What is the absolute pressure in atm? Depth: {d} m of seawater; density "
        "1025 kg/m^3; g = 9.8 m/s^2; atmospheric pressure 101325 Pa = 1 atm.",
        "Quick one: {d} m down in seawater (1025 kg/m³), g = 9.8 m/s², 1 atm = 101325 Pa at "
        "the surface. Absolute pressure in atm?",
        "A pressure gauge is lowered on a cable {d} m into the ocean (ρ = 1025 kg/m³, "
        "g = 9.8 m/s²). Counting the 101325 Pa of air above the water as 1 atm, how many "
        "atmospheres does it register in total?",
    ), _hydrostatic_pressure_atm),
    Family("lever_balance_force", Topic.MECHANICS, (
        "A {m} kg load sits {d1} cm from the pivot of a lever. What force, applied "
        "perpendicular to the lever {d2} cm from the pivot on the other side, balances it? "
        "Use g = 9.8 m/s^2.",
        "A light seesaw has a {m} kg child sitting {d1} cm from its pivot. What downward "
        "force {d2} cm from the pivot on the other side keeps it level? (g = 9.8 m/s^2)",
        "Moments: mass {m} kg at {d1} cm from a fulcrum, effort at {d2} cm on the opposite "
        "side. Find the effort force in newtons, taking g = 9.8 m/s^2.",
        "A market trader's beam balance has a {m} kg sack hanging {d1} cm from its pivot. "
        "What downward force, applied {d2} cm from the pivot on the other arm, holds the "
        "beam level? (g = 9.8 m/s^2, light beam)",
        "A builder rests a plank on a trestle and sets a {m} kilogram bag of cement on it "
        "{d1} centimetres from the trestle. What force, pressed straight down {d2} "
        "centimetres from the trestle on the opposite side, keeps the plank level? Take "
        "g = 9.8 m/s² and ignore the plank's own weight.",
        "What effort force, in N, balances the lever? Load: {m} kg at {d1} cm from the pivot; "
        "effort applied perpendicular at {d2} cm on the opposite side; g = 9.8 m/s^2.",
        "Quick one: {m} kg sits {d1} cm to one side of a pivot and a force acts {d2} cm to "
        "the other side. g = 9.8 m/s². Force needed to balance?",
        "A gardener lifts a {m} kg rock with a crowbar: the rock presses on the bar {d1} cm "
        "from the fulcrum, and she pushes {d2} cm from it on the far side. What force must "
        "she apply to just balance the rock? (g = 9.8 m/s²)",
    ), _lever_balance_force),
    Family("satellite_gravity_force", Topic.MECHANICS, (
        "A {m} kg satellite orbits {h} km above Earth's surface. What gravitational force "
        f"does Earth exert on it? Use {_EARTH}.",
        "Find the gravitational pull of Earth on a {m} kg spacecraft at an altitude of "
        f"{{h}} km, with {_EARTH}.",
        f"Taking {_EARTH}, calculate the weight of a {{m}} kg probe {{h}} km above the ground.",
        "A {m} kg weather satellite is placed in orbit {h} km above the ground. Using "
        f"{_EARTH}, find the gravitational force Earth exerts on it.",
        "Engineers send a {m} kg cargo capsule to a parking orbit {h} km above "
        "Earth's surface. How strong is Earth's gravitational attraction on the capsule at "
        f"that height? ({_EARTH}.)",
        "What gravitational force, in newtons, acts on an orbiting craft? Data: mass {m} kg, "
        f"altitude {{h}} km, {_EARTH}.",
        f"Quick one: {{m}} kg craft, {{h}} km up. Gravitational force from Earth? ({_EARTH}.)",
        "A space telescope of mass {m} kg circles the planet at {h} km altitude. How many "
        f"newtons does Earth's gravity pull it with? ({_EARTH}.)",
    ), _satellite_gravity_force),
    Family("orbital_speed", Topic.MECHANICS, (
        "A satellite is in a circular orbit {h} km above Earth's surface. What is its "
        f"orbital speed? Use {_EARTH}.",
        "How fast must a spacecraft move to stay in a circular orbit at an altitude of "
        f"{{h}} km? Take {_EARTH}.",
        f"With {_EARTH}, find the speed in m/s of a circular orbit {{h}} km above the surface.",
        "A navigation satellite is placed in a circular orbit {h} km above the ground. "
        f"Using {_EARTH}, how fast does it travel?",
        "An astronaut in a capsule coasting round Earth in a circle at an altitude of "
        f"{{h}} km wonders how fast she is moving. Taking {_EARTH}, what is the capsule's "
        "orbital speed in m/s?",
        "What is the speed of a circular orbit at an altitude of {h} km above Earth's "
        f"surface? {_EARTH}.",
        f"Quick one: circular orbit {{h}} km up, {_EARTH}. Orbital speed?",
        "Mission control wants a relay satellite to circle Earth {h} km up. What steady "
        f"speed, in metres per second, does that circular orbit need? ({_EARTH}.)",
    ), _orbital_speed),
)
