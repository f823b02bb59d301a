"""Energy and momentum: work, energy stores, power, efficiency, momentum and collisions."""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import random

from quanta_physics.families.base import Calc, Family, Topic, Worked, num

_SPEEDS_KMH = [18, 30, 36, 45, 50, 54, 60, 72, 80, 90, 100, 108, 120]


def _kinetic_energy(rng: random.Random) -> Worked:
    m, v = rng.choice([0.2, 0.5, 1.5, 2, 3, 5, 8, 12, 20, 70]), rng.randint(2, 30)
    ke = Calc(f"0.5*{num(m)}*{v}**2")
    return Worked({"m": num(m), "v": v},
                  ("Use KE = (1/2)mv^2.", f"KE = {ke} J."), ke.value, "J")


def _work_done(rng: random.Random) -> Worked:
    force, d = rng.randint(5, 300), round(rng.uniform(0.5, 25.0), 1)
    w = Calc(f"{force}*{num(d)}")
    return Worked({"F": force, "d": num(d)},
                  ("Use W = Fd, the force acting along the displacement.", f"W = {w} J."),
                  w.value, "J")


def _potential_energy_g_cm(rng: random.Random) -> Worked:
    m_g, h_cm = rng.randint(5, 200) * 10, rng.randint(20, 400)
    pe = Calc(f"{m_g}/1000*9.8*{h_cm}/100")
    return Worked({"m": m_g, "h": h_cm},
                  ("Use ΔPE = mgh, with m in kg (divide g by 1000) and h in m (divide cm by "
                   "100).", f"ΔPE = {pe} J."), pe.value, "J")


def _power_kj_minutes(rng: random.Random) -> Worked:
    w_kj, t_min = round(rng.uniform(2.0, 500.0), 1), rng.randint(1, 30)
    p = Calc(f"{num(w_kj, 4)}*1000/({t_min}*60)")
    return Worked({"w": num(w_kj, 4), "t": t_min},
                  ("Use P = W/t, with W in J (kJ × 1000) and t in s (min × 60).",
                   f"P = {p} W."), p.value, "W")


def _momentum_kmh(rng: random.Random) -> Worked:
    m, v_kmh = rng.randint(16, 50) * 50, rng.choice(_SPEEDS_KMH)
    p = Calc(f"{m}*{v_kmh}/3.6")
    return Worked({"m": m, "v": v_kmh},
                  ("Use p = mv, with v in m/s (divide km/h by 3.6).", f"p = {p} kg m/s."),
                  p.value, "kg m/s")


def _rebound_force_ms(rng: random.Random) -> Worked:
    m_g = rng.choice([45, 57, 58, 145, 160, 270, 410, 430, 450])
    v1, v2, t_ms = rng.randint(5, 40), rng.randint(2, 30), rng.randint(2, 20)
    dp = Calc(f"{m_g}/1000*({v1} + {v2})")
    f = Calc(f"{num(dp.value, 4)}/({t_ms}/1000)")
    return Worked({"m": m_g, "v1": v1, "v2": v2, "t": t_ms},
                  ("The velocity reverses, so the change of momentum is Δp = m(v1 + v2), with "
                   "m in kg; the average force is F = Δp/Δt, with Δt in s.",
                   f"Δp = {dp} kg m/s.", f"F = {f} N."), f.value, "N")


def _speed_after_fall(rng: random.Random) -> Worked:
    h = round(rng.uniform(1.0, 60.0), 1)
    v = Calc(f"sqrt(2*9.8*{num(h)})")
    return Worked({"h": num(h)},
                  ("Energy conservation: mgh = (1/2)mv^2, so v = √(2gh).", f"v = {v} m/s."),
                  v.value, "m/s")


def _spring_energy_cm(rng: random.Random) -> Worked:
    k, x_cm = rng.randint(2, 150) * 10, round(rng.uniform(1.0, 25.0), 1)
    e = Calc(f"0.5*{k}*({num(x_cm)}/100)**2")
    return Worked({"k": k, "x": num(x_cm)},
                  ("Use E = (1/2)kx^2, with x in m (divide cm by 100).", f"E = {e} J."),
                  e.value, "J")


def _motor_efficiency(rng: random.Random) -> Worked:
    m, h, eff = rng.randint(20, 500), rng.randint(2, 30), rng.uniform(0.4, 0.9)
    e_kj = num(m * 9.8 * h / eff / 1000)
    useful = Calc(f"{m}*9.8*{h}")
    eta = Calc(f"{num(useful.value, 4)}/({e_kj}*1000)*100")
    return Worked({"m": m, "h": h, "e": e_kj},
                  ("Efficiency = useful energy out / energy in × 100 %. The useful output is "
                   "the potential energy gained, mgh; the input in J is kJ × 1000.",
                   f"Useful energy = {useful} J.", f"Efficiency = {eta} %."), eta.value, "%")


def _inelastic_collision(rng: random.Random) -> Worked:
    m1, m2 = round(rng.uniform(0.5, 12.0), 1), round(rng.uniform(0.5, 12.0), 1)
    v1 = round(rng.uniform(0.5, 8.0), 1)
    v = Calc(f"{num(m1)}*{num(v1)}/({num(m1)} + {num(m2)})")
    return Worked({"m1": num(m1), "m2": num(m2), "v1": num(v1)},
                  ("Momentum is conserved and the bodies move together afterwards: "
                   "m1v1 = (m1 + m2)v, so v = m1v1/(m1 + m2).", f"v = {v} m/s."),
                  v.value, "m/s")


def _kinetic_energy_kj_kmh(rng: random.Random) -> Worked:
    m, v_kmh = rng.randint(12, 50) * 50, rng.choice(_SPEEDS_KMH)
    ke = Calc(f"0.5*{m}*({v_kmh}/3.6)**2/1000")
    return Worked({"m": m, "v": v_kmh},
                  ("Use KE = (1/2)mv^2, with v in m/s (divide km/h by 3.6); divide J by 1000 "
                   "for kJ.", f"KE = {ke} kJ."), ke.value, "kJ")


FAMILIES: tuple[Family, ...] = (
    Family("kinetic_energy", Topic.ENERGY_MOMENTUM, (
        "A {m} kg ball moves at {v} m/s. What is its kinetic energy?",
        "Find the kinetic energy of a {m} kg object travelling at {v} m/s.",
        "How much kinetic energy does a body of mass {m} kg have when its speed is {v} m/s?",
        "A drone weighing {m} kilograms flies level across a field at {v} m/s. Calculate its "
        "kinetic energy.",
        "A parcel of mass {m} kg shoots off the end of a conveyor belt at {v} m/s. What "
        "kinetic energy does it have as it leaves the belt?",
        "What is the kinetic energy, in joules, of a moving body? Data: mass {m} kg, speed "
        "{v} m/s.",
        "Quick one: {m} kg moving at {v} m/s. KE?",
        "A trolley of {m} kg rolls along a track at {v} metres per second. How much energy "
        "does it carry because of its motion?",
    ), _kinetic_energy),
    Family("work_done", Topic.ENERGY_MOMENTUM, (
        "A constant {F} N force pushes a box {d} m along the floor, in the direction of the "
        "force. How much work does it do?",
        "How much work is done when a force of {F} N moves its point of application {d} m in "
        "the direction of the force?",
        "A worker drags a sledge {d} m across snow, pulling with a steady {F} N parallel to "
        "the motion. Find the work done by the pull.",
        "A shopper pushes a loaded shopping cart {d} m down an aisle with a steady {F} N "
        "force along the direction it moves. How much work does the shopper do on the cart?",
        "In a physics lab, a student pulls a wooden block {d} metres across a bench with a "
        "spring balance that reads a constant {F} newtons, parallel to the bench. How much "
        "work does the pull do?",
        "How much work is done? A force of {F} N acts along the displacement while the object "
        "moves {d} m.",
        "Quick one: {F} N applied over {d} m in the same direction. Work done?",
        "A tow rope exerts {F} N on a stalled car along its direction of travel while the car "
        "moves {d} m. What work does the rope do on the car?",
    ), _work_done),
    Family("potential_energy_g_cm", Topic.ENERGY_MOMENTUM, (
        "A {m} g book is lifted {h} cm onto a shelf. By how much does its gravitational "
        "potential energy increase? Use g = 9.8 m/s^2.",
        "What gravitational potential energy does a {m} g mass gain when it is raised through "
        "{h} cm? Take g = 9.8 m/s^2.",
        "A child carries a {m} g toy up a flight of steps {h} cm high. Find the increase in "
        "the toy's potential energy (g = 9.8 m/s^2).",
        "Raising an object of mass {m} g by a vertical height of {h} cm stores how much "
        "energy in the gravitational field, with g = 9.8 m/s²?",
    ), _potential_energy_g_cm),
    Family("power_kj_minutes", Topic.ENERGY_MOMENTUM, (
        "A motor does {w} kJ of work in {t} minutes. What is its average power output?",
        "A crane performs {w} kJ of work lifting a load, taking {t} min. Find its average "
        "power in watts.",
        "If {w} kJ of work is done steadily over {t} minutes, at what rate, in watts, is the "
        "work being done?",
        "A lift motor hauls passengers up a tower block, doing {w} kJ of work in {t} minutes. "
        "What average power, in watts, does it deliver?",
        "A rower on an indoor rowing machine does {w} kJ of work during a {t} min session. "
        "Find her mean power output in W.",
        "What average power, in watts, is needed to finish a job requiring {w} kJ of work "
        "in {t} minutes?",
        "Quick one: {w} kJ of work in {t} min. Average power?",
        "Over a {t}-minute climb a cyclist does {w} kJ of work against gravity and friction. "
        "What mean power does she develop?",
    ), _power_kj_minutes),
    Family("momentum_kmh", Topic.ENERGY_MOMENTUM, (
        "A {m} kg car travels at {v} km/h. What is its momentum?",
        "Find the momentum of a {m} kg van moving along a motorway at {v} km/h.",
        "What is the magnitude of the linear momentum, in kg m/s, of a vehicle of mass {m} kg "
        "whose speedometer reads {v} km/h?",
        "A pickup truck loaded to {m} kg rolls down a high street at {v} km/h. Calculate its "
        "momentum in kg m/s.",
        "A rally car of {m} kilograms speeds along a gravel stage at {v} kilometres per hour. "
        "How much momentum does it carry?",
        "What is the momentum of a vehicle that has a mass of {m} kg and moves at {v} km/h?",
        "Quick one: {m} kg at {v} km/h. Momentum in kg m/s?",
        "A taxi with a total mass of {m} kg cruises at a steady {v} km/h. How much momentum "
        "does it have?",
    ), _momentum_kmh),
    Family("rebound_force_ms", Topic.ENERGY_MOMENTUM, (
        "A {m} g ball hits a wall at {v1} m/s and bounces straight back at {v2} m/s. The "
        "contact lasts {t} ms. What average force does the wall exert on the ball?",
        "A ball of mass {m} g travelling at {v1} m/s is struck by a bat and leaves in the "
        "opposite direction at {v2} m/s. If bat and ball touch for {t} ms, find the average "
        "force on the ball.",
        "Find the mean force on a {m} g ball whose velocity changes from {v1} m/s one way to "
        "{v2} m/s the opposite way during an impact lasting {t} ms.",
        "A tennis racket returns a {m} g ball that arrived at {v1} m/s, sending it straight "
        "back at {v2} m/s. Strings and ball are in contact for {t} ms. What average force "
        "acts on the ball?",
        "In a lab test, a {m} gram ball is fired at {v1} metres per second into a steel plate "
        "and rebounds along the same line at {v2} metres per second; a high-speed camera "
        "shows the impact lasts {t} ms. Find the average force exerted by the plate.",
        "What average force does a wall exert on a ball during a bounce? The ball's mass is "
        "{m} g, it arrives at {v1} m/s, leaves in the reverse direction at {v2} m/s, and "
        "the impact takes {t} ms.",
        "Quick one: {m} g ball, in at {v1} m/s, straight back out at {v2} m/s, contact {t} ms. "
        "Mean force?",
        "A goalkeeper's punch sends a {m} g ball that arrived at {v1} m/s straight back "
        "at {v2} m/s; fist and ball are in contact for {t} milliseconds. Estimate the average "
        "force on the ball.",
    ), _rebound_force_ms),
    Family("speed_after_fall", Topic.ENERGY_MOMENTUM, (
        "A stone is dropped from rest from a height of {h} m. Using conservation of energy, "
        "how fast is it moving just before it hits the ground? Ignore air resistance and "
        "take g = 9.8 m/s^2.",
        "A roller-coaster car starts from rest at the top of a {h} m drop. Neglecting "
        "friction, what is its speed at the bottom? (g = 9.8 m/s^2)",
        "An object falls freely through {h} m, starting at rest. Equating the loss of "
        "potential energy to the gain in kinetic energy, find its final speed "
        "(g = 9.8 m/s^2).",
        "A window cleaner drops a spanner from rest {h} m above the pavement. Ignoring air "
        "resistance and using g = 9.8 m/s², how fast is it going when it lands?",
        "A skateboarder rolls from rest down a frictionless ramp with a vertical drop of {h} "
        "metres. Taking g = 9.8 m/s^2, what speed does she reach at the bottom?",
        "What is the impact speed of a body released from rest at a height of {h} m? Use "
        "energy conservation with g = 9.8 m/s^2 and ignore air resistance.",
        "Quick one: dropped from rest through {h} m, no air resistance, g = 9.8 m/s². Speed "
        "at the bottom?",
        "A diver steps off a platform {h} m above the water. With g = 9.8 m/s² and no air "
        "drag, at what speed does she enter the water?",
    ), _speed_after_fall),
    Family("spring_energy_cm", Topic.ENERGY_MOMENTUM, (
        "A spring of stiffness {k} N/m is compressed by {x} cm. How much elastic potential "
        "energy does it store?",
        "How much energy is stored in a spring with spring constant {k} N/m when it is "
        "stretched {x} cm from its natural length?",
        "A toy launcher's spring (k = {k} N/m) is pushed in by {x} cm. Find the elastic "
        "energy it holds.",
        "Pulling a {k} N/m spring {x} centimetres beyond its relaxed length stores what "
        "amount of energy in it?",
    ), _spring_energy_cm),
    Family("motor_efficiency", Topic.ENERGY_MOMENTUM, (
        "An electric motor uses {e} kJ of electrical energy to lift a {m} kg load through "
        "{h} m. What is its efficiency? Take g = 9.8 m/s^2.",
        "A winch motor takes in {e} kJ while raising {m} kg by {h} m. What percentage of the "
        "input energy ends up as gravitational potential energy (g = 9.8 m/s^2)?",
        "Find the efficiency, as a percentage, of a hoist that raises a {m} kg crate {h} m "
        "vertically using {e} kJ of electrical energy. Use g = 9.8 m/s^2.",
        "On a building site, an electric crane uses {e} kJ of electrical energy to hoist a "
        "{m} kg pallet of bricks {h} m up. Taking g = 9.8 m/s², what is its efficiency in "
        "percent?",
        "A water pump's motor consumes {e} kJ while lifting {m} kg of water through a height "
        "of {h} metres. With g = 9.8 m/s^2, what percentage efficiency does this represent?",
        "What is the percentage efficiency of a motor that takes in {e} kJ of electrical "
        "energy and lifts {m} kilograms by {h} m? Use g = 9.8 m/s^2.",
        "Quick one: a motor uses {e} kJ to raise {m} kg by {h} m (g = 9.8 m/s²). Efficiency "
        "in %?",
        "Lifting {m} kg up a {h} m lift shaft costs a motor {e} kJ of electrical energy. "
        "With g = 9.8 m/s², how efficient is the motor, in percent?",
    ), _motor_efficiency),
    Family("inelastic_collision", Topic.ENERGY_MOMENTUM, (
        "A {m1} kg trolley moving at {v1} m/s collides with a stationary {m2} kg trolley and "
        "they stick together. What is their common speed just after the collision?",
        "A {m1} kg lump of putty travelling at {v1} m/s hits and sticks to a {m2} kg block "
        "at rest on smooth ice. How fast does the combination move?",
        "In a perfectly inelastic collision, a body of mass {m1} kg moving at {v1} m/s "
        "strikes a body of mass {m2} kg at rest. Find the speed of the combined mass "
        "afterwards.",
        "In a lab, a {m1} kg glider on an air track moving at {v1} m/s runs into a {m2} kg "
        "glider at rest; Velcro pads make them stick together. What is their joint speed?",
        "A {m1} kg projectile travelling horizontally at {v1} m/s embeds itself in a {m2} kg "
        "wooden block resting on a frictionless surface. How fast does the block then slide?",
        "What is the common velocity after the collision? A {m1} kg mass moving at {v1} m/s "
        "hits a stationary {m2} kg mass and the two stick together.",
        "Quick one: {m1} kg at {v1} m/s sticks to {m2} kg at rest. Speed afterwards?",
        "A cart of {m1} kg rolling at {v1} m/s couples onto a {m2} kg cart that was standing "
        "still, and the two move off joined. What speed do they have?",
    ), _inelastic_collision),
    Family("kinetic_energy_kj_kmh", Topic.ENERGY_MOMENTUM, (
        "A {m} kg car is travelling at {v} km/h. What is its kinetic energy in kJ?",
        "Find the kinetic energy, in kilojoules, of a {m} kg vehicle moving at {v} km/h.",
        "How many kilojoules of kinetic energy does a van of mass {m} kg have when it is "
        "doing {v} km/h?",
        "A minibus of {m} kg joins a motorway at {v} km/h. How much kinetic energy does it "
        "have, in kJ?",
        "In a crash test, a {m} kilogram test car is driven towards the barrier at {v} "
        "kilometres per hour. What is its kinetic energy in kilojoules just before impact?",
        "What is the kinetic energy in kJ of a vehicle weighing {m} kg that is moving at {v} "
        "km/h?",
        "Quick one: {m} kg at {v} km/h. KE in kJ?",
        "The brakes of a {m} kg car bring it to rest from {v} km/h. How much kinetic energy, "
        "in kJ, must they remove?",
    ), _kinetic_energy_kj_kmh),
)
