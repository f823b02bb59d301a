"""Thermodynamics and gases: heat, phase changes, expansion, gas laws, engines, radiation."""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import random

from quanta_physics.families.base import Calc, Family, Topic, Worked, num

_SPECIFIC_HEATS = [("water", 4186), ("aluminium", 900), ("copper", 385), ("iron", 450)]
_METALS = [("copper", 385), ("aluminium", 900), ("iron", 450), ("lead", 128), ("brass", 380)]
_EXPANSION = [("steel", 12), ("aluminium", 23), ("copper", 17), ("brass", 19)]
# (what happens, to what, which latent heat, its value in kJ/kg)
_LATENT = [("melt", "ice at 0 °C", "fusion", 334),
           ("boil away", "water at 100 °C", "vaporisation", 2260)]
_WALLS = [("brick", 0.6), ("concrete", 0.8), ("stone", 1.7), ("timber", 0.12)]
_GASES = [("helium", 4), ("neon", 20), ("nitrogen", 28), ("oxygen", 32), ("argon", 40),
          ("carbon dioxide", 44)]


def _ideal_gas_pressure(rng: random.Random) -> Worked:
    n, temp, litres = round(rng.uniform(0.5, 5.0), 1), rng.randint(250, 450), rng.randint(5, 50)
    p = Calc(f"{num(n)}*8.314*{temp}/({litres}/1000)/1000")
    return Worked({"n": num(n), "T": temp, "V": litres},
                  ("Use P = nRT/V, with V in m^3 (L / 1000); divide Pa by 1000 for kPa.",
                   f"P = {p} kPa."), p.value, "kPa")


def _heat_capacity(rng: random.Random) -> Worked:
    material, c = rng.choice(_SPECIFIC_HEATS)
    m, dt = round(rng.uniform(0.1, 3.0), 1), rng.randint(5, 60)
    q = Calc(f"{num(m)}*{c}*{dt}/1000")
    return Worked({"material": material, "c": c, "m": num(m), "dt": dt},
                  ("Use Q = mcΔT; divide J by 1000 for kJ.", f"Q = {q} kJ."), q.value, "kJ")


def _thermal_expansion(rng: random.Random) -> Worked:
    material, alpha = rng.choice(_EXPANSION)
    length, dt = rng.randint(1, 50), rng.randint(10, 80)
    growth = Calc(f"{alpha}e-6*{length}*{dt}*1000")
    return Worked({"material": material, "alpha": alpha, "L": length, "dt": dt},
                  ("Use ΔL = αLΔT; multiply m by 1000 for mm.", f"ΔL = {growth} mm."),
                  growth.value, "mm")


def _carnot_efficiency(rng: random.Random) -> Worked:
    hot, cold = rng.randint(400, 900), rng.randint(270, 350)
    eta = Calc(f"(1 - {cold}/{hot})*100")
    return Worked({"hot": hot, "cold": cold},
                  ("Carnot efficiency: η = 1 − Tc/Th, times 100 for a percentage.",
                   f"η = {eta} %."), eta.value, "%")


def _latent_heat_grams(rng: random.Random) -> Worked:
    verb, substance, kind, latent = rng.choice(_LATENT)
    m_g = rng.randint(2, 300) * 5
    q = Calc(f"{m_g}/1000*{latent}")
    return Worked({"verb": verb, "substance": substance, "kind": kind, "L": latent, "m": m_g},
                  ("Use Q = mL, with m in kg (divide g by 1000) and L in kJ/kg, so Q is in kJ.",
                   f"Q = {q} kJ."), q.value, "kJ")


def _boyle_law(rng: random.Random) -> Worked:
    p1, v1 = rng.randint(80, 400), round(rng.uniform(1.0, 20.0), 1)
    v2 = round(v1 * rng.choice([rng.uniform(0.2, 0.8), rng.uniform(1.2, 3.0)]), 1)
    p2 = Calc(f"{p1}*{num(v1)}/{num(v2)}")
    return Worked({"p1": p1, "v1": num(v1), "v2": num(v2)},
                  ("Boyle's law at constant temperature: P1V1 = P2V2, so P2 = P1V1/V2 "
                   "(the litres cancel).", f"P2 = {p2} kPa."), p2.value, "kPa")


def _charles_law_celsius(rng: random.Random) -> Worked:
    v1, t1 = round(rng.uniform(1.0, 10.0), 1), rng.randint(0, 40)
    v2 = round(v1 * rng.uniform(1.1, 1.8), 1)
    t2 = Calc(f"({t1} + 273.15)*{num(v2)}/{num(v1)} - 273.15")
    return Worked({"v1": num(v1), "t1": t1, "v2": num(v2)},
                  ("Charles's law at constant pressure: V1/T1 = V2/T2 with T in kelvin "
                   "(°C + 273.15), so T2 = T1·V2/V1; subtract 273.15 to return to °C.",
                   f"T2 = {t2} °C."), t2.value, "°C")


def _water_mixing(rng: random.Random) -> Worked:
    m1, t1 = rng.randint(10, 160) * 5, rng.randint(45, 95)
    m2, t2 = rng.randint(10, 160) * 5, rng.randint(5, 30)
    t = Calc(f"({m1}*{t1} + {m2}*{t2})/({m1} + {m2})")
    return Worked({"m1": m1, "t1": t1, "m2": m2, "t2": t2},
                  ("Heat lost by the hot water equals heat gained by the cold: "
                   "m1c(T1 − T) = m2c(T − T2). The specific heat c cancels (and so do the "
                   "gram units), so T = (m1T1 + m2T2)/(m1 + m2).", f"T = {t} °C."),
                  t.value, "°C")


def _metal_in_water(rng: random.Random) -> Worked:
    metal, c = rng.choice(_METALS)
    mm, tm = rng.randint(10, 80) * 5, rng.randint(60, 200)
    mw, tw = rng.randint(40, 200) * 5, rng.randint(10, 25)
    t = Calc(f"({mm}*{c}*{tm} + {mw}*4186*{tw})/({mm}*{c} + {mw}*4186)")
    return Worked({"metal": metal, "c": c, "mm": mm, "tm": tm, "mw": mw, "tw": tw},
                  ("Heat lost by the metal equals heat gained by the water: "
                   "mm·cm(Tm − T) = mw·cw(T − Tw), so T = (mm·cm·Tm + mw·cw·Tw)/(mm·cm + "
                   "mw·cw); the masses may stay in grams because the unit cancels.",
                   f"T = {t} °C."), t.value, "°C")


def _wall_conduction(rng: random.Random) -> Worked:
    material, k = rng.choice(_WALLS)
    area, d_cm = rng.randint(2, 20), rng.randint(5, 30)
    t_in, t_out = rng.randint(15, 25), rng.randint(-10, 12)
    outside = f"({t_out})" if t_out < 0 else str(t_out)
    p = Calc(f"{k}*{area}*({t_in} - {outside})/({d_cm}/100)")
    return Worked({"material": material, "k": k, "A": area, "d": d_cm, "tin": t_in,
                   "tout": t_out},
                  ("Fourier's law: P = kAΔT/d, with d in m (divide cm by 100); a difference "
                   "in °C equals the same difference in K.", f"P = {p} W."), p.value, "W")


def _ideal_gas_temperature_atm(rng: random.Random) -> Worked:
    n, litres = round(rng.uniform(0.5, 4.0), 1), rng.randint(5, 60)
    p_atm = num(n * 8.314 * rng.uniform(220, 600) / (litres / 1000) / 101325)
    t = Calc(f"{p_atm}*101325*({litres}/1000)/({num(n)}*8.314)")
    return Worked({"n": num(n), "p": p_atm, "V": litres},
                  ("Use T = PV/(nR), with P in Pa (atm × 101325) and V in m^3 (L / 1000).",
                   f"T = {t} K."), t.value, "K")


def _first_law(rng: random.Random) -> Worked:
    q_kj = round(rng.uniform(0.5, 20.0), 1)
    w = round(q_kj * 1000 * rng.uniform(0.1, 0.9), -1)
    w = int(w) if w > 0 else 50
    du = Calc(f"{num(q_kj)}*1000 - {w}")
    return Worked({"q": num(q_kj), "w": w},
                  ("First law: ΔU = Q − W, with Q the heat added to the gas and W the work "
                   "done by the gas, both in J (kJ × 1000).", f"ΔU = {du} J."), du.value, "J")


def _rms_speed_celsius(rng: random.Random) -> Worked:
    gas, molar = rng.choice(_GASES)
    t_c = rng.randint(-50, 400)
    v = Calc(f"sqrt(3*8.314*({t_c} + 273.15)/({molar}/1000))")
    return Worked({"gas": gas, "M": molar, "t": t_c},
                  ("Use v_rms = √(3RT/M), with T in K (°C + 273.15) and M in kg/mol "
                   "(g/mol / 1000).", f"v_rms = {v} m/s."), v.value, "m/s")


def _radiated_power(rng: random.Random) -> Worked:
    area, emissivity, t_c = rng.randint(20, 500), round(rng.uniform(0.3, 1.0), 2), \
        rng.randint(20, 120) * 10
    p = Calc(f"{num(emissivity)}*5.67e-8*({area}/10000)*({t_c} + 273.15)**4")
    return Worked({"A": area, "e": num(emissivity), "t": t_c},
                  ("Stefan–Boltzmann law: P = εσAT^4, with A in m^2 (cm^2 / 10000) and T in K "
                   "(°C + 273.15).", f"P = {p} W."), p.value, "W")


FAMILIES: tuple[Family, ...] = (
    Family("ideal_gas_pressure", Topic.THERMODYNAMICS, (
        "What is the pressure of {n} mol of an ideal gas at {T} K in a {V} L container? "
        "Use R = 8.314 J/(mol K).",
        "A sealed {V} L flask holds {n} mol of gas at {T} K. Treating it as ideal "
        "(R = 8.314 J/(mol K)), find the pressure in kPa.",
        "Find the pressure, in kilopascals, exerted by {n} moles of an ideal gas confined to "
        "{V} litres at a temperature of {T} K. R = 8.314 J/(mol K).",
        "In a chemistry lab, {n} mol of helium is sealed inside a rigid {V} L glass bulb that is "
        "held at {T} K. With R = 8.314 J/(mol K), what pressure in kPa does the helium exert?",
        "What pressure, in kPa, is there inside a rigid {V} L storage drum that holds {n} mol of "
        "air at {T} K? Treat the air as an ideal gas with R = 8.314 J/(mol K).",
        "Quick one: {n} mol of ideal gas, {V} litres, {T} K, R = 8.314 J/(mol·K). Pressure in kPa?",
        "An engineer seals {n} moles of air inside a {V}-litre vacuum chamber used for testing "
        "electronics and brings it to {T} K. Taking R = 8.314 J mol⁻¹ K⁻¹, what absolute pressure, "
        "in kilopascals, does the air exert?",
        "A gas cylinder of volume {V} L contains {n} mol of nitrogen at {T} K. Assuming "
        "ideal behaviour with R = 8.314 J/(mol K), how much pressure does the gas exert?",
    ), _ideal_gas_pressure),
    Family("heat_capacity", Topic.THERMODYNAMICS, (
        "How much heat, in kJ, raises the temperature of {m} kg of {material} "
        "(c = {c} J/(kg K)) by {dt} K?",
        "A {m} kg sample of {material} (specific heat {c} J/(kg K)) is warmed by {dt} K. How "
        "many kilojoules of heat does it absorb?",
        "Find the energy needed, in kJ, to heat {m} kg of {material} through a temperature "
        "rise of {dt} K, given c = {c} J/(kg K).",
        "A student uses a hot plate to warm {m} kg of {material} in the lab, raising its "
        "temperature by {dt} K. If the specific heat of {material} is {c} J/(kg K), how many kJ of "
        "heat did the {material} absorb?",
        "How many kilojoules does it take to heat {m} kilograms of {material} by {dt} K? Data: "
        "c = {c} J/(kg·K).",
        "Quick one: {m} kg of {material}, c = {c} J/(kg K), ΔT = {dt} K. Heat needed in kJ?",
        "Sunlight falling on a rooftop solar collector warms {m} kg of {material} inside it by "
        "{dt} K. Given that {material} has a specific heat capacity of {c} J kg⁻¹ K⁻¹, find the "
        "energy it gains in kJ.",
        "What quantity of heat in kilojoules must be supplied to make the temperature of "
        "{m} kg of {material} climb by {dt} K? Its specific heat capacity is {c} J/(kg K).",
    ), _heat_capacity),
    Family("thermal_expansion", Topic.THERMODYNAMICS, (
        "A {L} m {material} rail (α = {alpha} × 10^-6 /K) warms by {dt} K. By how many "
        "millimetres does it lengthen?",
        "By how much, in mm, does a {L} m long {material} bar expand when its temperature "
        "rises {dt} K? The linear expansion coefficient is {alpha} × 10^-6 per K.",
        "A {material} beam of length {L} m has α = {alpha} × 10^-6 K^-1. Find its increase "
        "in length, in millimetres, for a temperature increase of {dt} K.",
        "On a hot day a {L}-metre {material} pipe (expansion coefficient {alpha} × 10^-6 /K) "
        "gets {dt} K warmer. How many millimetres longer does it become?",
    ), _thermal_expansion),
    Family("carnot_efficiency", Topic.THERMODYNAMICS, (
        "What is the maximum efficiency of a heat engine working between {hot} K and {cold} "
        "K? Give a percentage.",
        "A heat engine takes in heat at {hot} K and rejects it at {cold} K. What is the "
        "highest efficiency, in percent, it could possibly achieve?",
        "Find the Carnot efficiency, as a percentage, of an ideal engine operating between "
        "reservoirs at {hot} K and {cold} K.",
        "A coal power station's boiler supplies steam at {hot} K, and its condenser is cooled by "
        "river water at {cold} K. What is the best efficiency, in %, that any engine could reach "
        "between these two temperatures?",
        "What percentage of its input heat can an ideal engine turn into work at best, if it runs "
        "between a hot reservoir at {hot} K and a cold one at {cold} K?",
        "Quick one: Carnot engine, Th = {hot} K, Tc = {cold} K. Efficiency in percent?",
        "A geothermal plant pulls hot brine from deep underground at {hot} K and rejects heat to a "
        "cooling pond at {cold} K. Ignoring all practical losses, what is its theoretical maximum "
        "efficiency as a percentage?",
        "An inventor's engine draws heat from a furnace at {hot} K and dumps its waste heat "
        "into surroundings at {cold} K. What upper limit does thermodynamics put on its "
        "efficiency, in %?",
    ), _carnot_efficiency),
    Family("latent_heat_grams", Topic.THERMODYNAMICS, (
        "How much heat, in kJ, is needed to {verb} {m} g of {substance}? The specific latent "
        "heat of {kind} is {L} kJ/kg.",
        "Find the energy in kilojoules required to {verb} a {m} g sample of {substance}, "
        "given a latent heat of {kind} of {L} kJ/kg.",
        "A heater must {verb} {m} g of {substance} without changing its temperature. With "
        "L = {L} kJ/kg (latent heat of {kind}), how many kJ must it supply?",
        "On a camping trip, a gas stove is used to {verb} {m} g of {substance} in a pot. If the "
        "latent heat of {kind} is {L} kJ/kg, how many kJ of heat must the pot's contents take in?",
        "How many kilojoules are needed to {verb} {m} grams of {substance}? Latent heat of {kind}: "
        "{L} kJ/kg.",
        "Quick one: {verb} {m} g of {substance}, with L({kind}) = {L} kJ/kg. Energy in kJ?",
        "In a school experiment, an electric immersion heater is used to {verb} {m} g of "
        "{substance} in an insulated beaker. The specific latent heat of {kind} is {L} kJ/kg. What "
        "energy, in kJ, does the heater have to provide if none is lost?",
        "Taking the specific latent heat of {kind} as {L} kJ/kg, what energy in kJ does it "
        "take to completely {verb} {m} grams of {substance}?",
    ), _latent_heat_grams),
    Family("boyle_law", Topic.THERMODYNAMICS, (
        "A gas at {p1} kPa occupies {v1} L. Keeping its temperature constant, its volume is "
        "changed to {v2} L. What is its new pressure?",
        "At constant temperature, {v1} L of air at {p1} kPa is allowed to change volume to "
        "{v2} L. Find the final pressure in kPa.",
        "Using Boyle's law, find the pressure of a fixed mass of gas whose volume changes "
        "isothermally from {v1} L to {v2} L, if it starts at {p1} kPa.",
        "A weather researcher's sealed, flexible sample bag holds {v1} L of air at {p1} kPa. It is "
        "carried to a different altitude, where, at the same temperature, its volume becomes "
        "{v2} L. What is the pressure of the air in the bag now, in kPa?",
        "What is the final pressure, in kPa, of a gas whose volume goes from {v1} L to {v2} L at "
        "constant temperature, starting from {p1} kPa?",
        "Quick one: isothermal change, P1 = {p1} kPa, V1 = {v1} L, V2 = {v2} L. P2 in kPa?",
        "A scuba instructor demonstrates with a sealed, stretchy bladder of air: at {p1} kPa it "
        "holds {v1} litres. Moved to a new depth in the training pool at the same temperature, its "
        "volume changes to {v2} litres. Find the air pressure inside it now, in kPa.",
        "A piston slowly moves in a cylinder holding {v1} litres of gas at {p1} kPa, without "
        "the temperature changing, until the gas fills {v2} litres. What pressure does the "
        "gas now have?",
    ), _boyle_law),
    Family("charles_law_celsius", Topic.THERMODYNAMICS, (
        "A gas occupies {v1} L at {t1} °C. At constant pressure, to what temperature in °C "
        "must it be heated for its volume to become {v2} L? (0 °C = 273.15 K)",
        "A balloon holds {v1} L of air at {t1} °C. Keeping the pressure fixed, what Celsius "
        "temperature makes it swell to {v2} L? Use T(K) = T(°C) + 273.15.",
        "Find the temperature, in degrees Celsius, at which a fixed amount of gas at constant "
        "pressure has a volume of {v2} L, if its volume is {v1} L at {t1} °C. Take 0 °C as "
        "273.15 K.",
        "In a physics practical, a large gas syringe with a freely sliding plunger holds {v1} L of "
        "air at {t1} °C. The syringe is lowered into a water bath and the pressure stays constant. "
        "What bath temperature, in °C, makes the volume read {v2} L? (0 °C = 273.15 K)",
        "What Celsius temperature gives a volume of {v2} L, if a gas at constant pressure takes up "
        "{v1} L at {t1} °C? Use T(K) = T(°C) + 273.15.",
        "Quick one: constant pressure, V1 = {v1} L at {t1} °C, V2 = {v2} L. Find T2 in °C "
        "(0 °C = 273.15 K).",
        "A loosely tied oven bag holding {v1} litres of air at {t1} °C is placed in an oven. The "
        "pressure inside stays equal to the room's as the bag puffs up to {v2} litres. How hot, in "
        "degrees Celsius, has the air become? (Add 273.15 to °C to get kelvin.)",
        "At constant pressure, {v1} litres of nitrogen at {t1} °C are warmed until they take "
        "up {v2} litres. What is the final temperature on the Celsius scale? (Absolute zero "
        "is −273.15 °C.)",
    ), _charles_law_celsius),
    Family("water_mixing", Topic.THERMODYNAMICS, (
        "{m1} g of water at {t1} °C is mixed with {m2} g of water at {t2} °C. Ignoring heat "
        "losses, what is the final temperature of the mixture?",
        "Hot water ({m1} g at {t1} °C) is poured into {m2} g of cold water at {t2} °C in an "
        "insulated flask. Find the temperature the mixture settles at.",
        "What equilibrium temperature is reached when {m2} g of water at {t2} °C and {m1} g "
        "of water at {t1} °C are combined, with no heat exchanged with the surroundings?",
        "To cool a {m1} g cup of tea at {t1} °C (treat it as water), someone stirs in {m2} g "
        "of water at {t2} °C. Assuming no heat escapes, how warm is the drink afterwards?",
    ), _water_mixing),
    Family("metal_in_water", Topic.THERMODYNAMICS, (
        "A {mm} g block of {metal} (c = {c} J/(kg K)) at {tm} °C is dropped into {mw} g of "
        "water (c = 4186 J/(kg K)) at {tw} °C. Ignoring losses, what is the final "
        "temperature?",
        "A hot piece of {metal} of mass {mm} g, at {tm} °C, is placed in {mw} g of water at "
        "{tw} °C. With c = {c} J/(kg K) for {metal} and 4186 J/(kg K) for water, find the "
        "common temperature they reach.",
        "Find the equilibrium temperature when {mw} g of water at {tw} °C (c = 4186 "
        "J/(kg K)) receives a {mm} g {metal} ball at {tm} °C (c = {c} J/(kg K)), with no heat "
        "lost to the surroundings.",
        "In a calorimetry practical, a student heats a {mm} g {metal} slug to {tm} °C in an oven, "
        "then drops it into a polystyrene cup containing {mw} g of water at {tw} °C. Taking "
        "c = {c} J/(kg K) for {metal} and c = 4186 J/(kg K) for water, and ignoring heat lost to "
        "the cup and air, what final temperature does the thermometer show?",
        "What final temperature do {mm} g of {metal} at {tm} °C and {mw} g of water at {tw} °C "
        "reach together? Specific heats: {c} J/(kg·K) for the {metal}, 4186 J/(kg·K) for the "
        "water; no heat is lost.",
        "Quick one: {mm} g of {metal} (c = {c} J/(kg K)) at {tm} °C goes into {mw} g of water "
        "(c = 4186 J/(kg K)) at {tw} °C. Final temperature in °C?",
        "A cook lifts a {mm} g {metal} pie weight out of the oven at {tm} °C and drops it into a "
        "saucepan holding {mw} grams of water at {tw} °C. With specific heats of {c} J kg⁻¹ K⁻¹ "
        "({metal}) and 4186 J kg⁻¹ K⁻¹ (water), and no heat escaping to the pan or the kitchen, "
        "what temperature does everything settle at?",
        "A blacksmith quenches {mm} g of {metal}, heated to {tm} °C, in a bucket holding "
        "{mw} g of water at {tw} °C. Specific heats: {metal} {c} J/(kg K), water 4186 "
        "J/(kg K). If no water boils and no heat escapes, at what temperature do metal and "
        "water end up?",
    ), _metal_in_water),
    Family("wall_conduction", Topic.THERMODYNAMICS, (
        "A {material} wall {d} cm thick and {A} m^2 in area has its inner face at {tin} °C "
        "and its outer face at {tout} °C. Its thermal conductivity is {k} W/(m K). At what "
        "rate does heat flow through it?",
        "How much heat per second is conducted through {A} m^2 of {material} (k = {k} "
        "W/(m K)) that is {d} cm thick, if one side is at {tin} °C and the other at {tout} "
        "°C?",
        "Find the rate of heat loss, in watts, through a {d} cm thick {material} panel of "
        "area {A} m^2 with thermal conductivity {k} W/(m K), when the faces are at {tin} °C "
        "and {tout} °C.",
        "In winter, the {material} wall of a mountain hut is {d} cm thick and has an area of "
        "{A} m². The inner surface sits at {tin} °C and the outer surface at {tout} °C. If k = {k} "
        "W/(m·K), how many watts of heat does the wall conduct outward?",
        "What is the conductive heat flow, in watts, through a {material} slab of area {A} m^2 and "
        "thickness {d} cm, with thermal conductivity {k} W/(m K) and faces held at {tin} °C and "
        "{tout} °C?",
        "Quick one: {material}, k = {k} W/(m K), A = {A} m^2, d = {d} cm, faces at {tin} °C and "
        "{tout} °C. Heat flow in W?",
        "An architect checks a {material} wall between a heated classroom and the outdoors. It is "
        "{d} centimetres thick and {A} m² in area, its inside face is at {tin} °C, its outside "
        "face is at {tout} °C, and its thermal conductivity is {k} W/(m K). Find the rate of heat "
        "conduction through it in watts.",
        "Inside a shed the air keeps one side of a {material} wall at {tin} °C while the "
        "outside face is at {tout} °C. The wall is {d} cm thick, covers {A} m^2 and conducts "
        "with k = {k} W/(m K). What power leaks through it?",
    ), _wall_conduction),
    Family("ideal_gas_temperature_atm", Topic.THERMODYNAMICS, (
        "{n} mol of an ideal gas in a {V} L container exerts a pressure of {p} atm. What is "
        "its temperature? Use R = 8.314 J/(mol K) and 1 atm = 101325 Pa.",
        "Find the temperature, in kelvin, of {n} moles of ideal gas held at {p} atm in a "
        "volume of {V} L. Take R = 8.314 J/(mol K) and 1 atm = 101325 Pa.",
        "A {V} L tank contains {n} mol of gas, and a gauge shows the absolute pressure is "
        "{p} atm. Treating the gas as ideal (R = 8.314 J/(mol K), 1 atm = 101325 Pa), how "
        "hot is it in K?",
        "A scuba tank with an internal volume of {V} L holds {n} mol of air, and its absolute "
        "pressure reads {p} atm. Treating the air as ideal with R = 8.314 J/(mol K) and "
        "1 atm = 101325 Pa, what is the air's temperature in kelvin?",
        "What temperature, in K, does an ideal gas have if {n} mol of it fill {V} L at {p} atm? "
        "(R = 8.314 J/(mol·K), 1 atm = 101325 Pa)",
        "Quick one: n = {n} mol, V = {V} L, P = {p} atm, R = 8.314 J/(mol K), 1 atm = 101325 Pa. T "
        "in kelvin?",
        "During a lab experiment, {n} moles of argon are trapped in a rigid {V}-litre steel "
        "vessel, and the pressure sensor reports {p} atmospheres. Assuming ideal-gas behaviour "
        "(R = 8.314 J mol⁻¹ K⁻¹; one atmosphere is 101325 Pa), find the gas temperature in K.",
        "At what absolute temperature would {n} mol of an ideal gas filling {V} litres "
        "produce {p} atmospheres of pressure? (R = 8.314 J/(mol K); 1 atm = 101325 Pa)",
    ), _ideal_gas_temperature_atm),
    Family("first_law", Topic.THERMODYNAMICS, (
        "A gas absorbs {q} kJ of heat and does {w} J of work on its surroundings. By how "
        "much does its internal energy change?",
        "While {q} kJ of heat flows into a gas, the gas expands and does {w} J of work. Find "
        "the change in its internal energy, in joules.",
        "Use the first law of thermodynamics to find ΔU for a system that takes in {q} kJ of "
        "heat while doing {w} J of work.",
        "A helium weather balloon sitting in the sunshine absorbs {q} kJ of heat, and as it swells "
        "it does {w} J of work pushing back the surrounding air. What is the change in the gas's "
        "internal energy, in joules?",
        "What is ΔU, in J, for a gas that gains {q} kJ of heat and performs {w} J of work on its "
        "surroundings?",
        "Quick one: Q = {q} kJ in, W = {w} J done by the gas. ΔU in joules?",
        "In a model steam engine, the working gas picks up {q} kilojoules of heat from the boiler "
        "and delivers {w} J of work to the flywheel. Applying the first law, how much does its "
        "internal energy change, in J?",
        "A cylinder of gas is heated with {q} kJ, and its piston is pushed out, the gas doing "
        "{w} J of work in the process. How many joules does the gas's internal energy rise "
        "by?",
    ), _first_law),
    Family("rms_speed_celsius", Topic.THERMODYNAMICS, (
        "What is the root-mean-square speed of {gas} molecules (molar mass {M} g/mol) at "
        "{t} °C? Use R = 8.314 J/(mol K).",
        "Find the rms speed of the molecules in a sample of {gas} gas at {t} °C. The molar "
        "mass of {gas} is {M} g/mol and R = 8.314 J/(mol K).",
        "A container of {gas} ({M} g/mol) is at {t} °C. How fast, in m/s, do its molecules "
        "move on a root-mean-square basis? Take R = 8.314 J/(mol K).",
        "A chemist keeps a sealed glass bulb of {gas} in a thermostatic chamber at {t} °C. With a "
        "molar mass of {M} g/mol and R = 8.314 J/(mol K), what is the rms speed of the {gas} "
        "molecules, in m/s?",
        "What rms speed, in metres per second, do {gas} molecules (M = {M} g/mol) have at {t} °C? "
        "Use R = 8.314 J/(mol·K).",
        "Quick one: {gas}, M = {M} g/mol, {t} °C, R = 8.314 J/(mol K). v_rms in m/s?",
        "A space-science team simulates a planet's atmosphere of pure {gas} (molar mass {M} g/mol) "
        "in a test chamber at {t} °C. Taking R = 8.314 J mol⁻¹ K⁻¹, work out the root-mean-square "
        "speed of its molecules.",
        "Estimate the typical (rms) molecular speed in {gas}, whose molar mass is {M} g/mol, "
        "when its temperature is {t} °C, using R = 8.314 J/(mol K).",
    ), _rms_speed_celsius),
    Family("radiated_power", Topic.THERMODYNAMICS, (
        "A surface of area {A} cm^2 and emissivity {e} is at {t} °C. What power does it "
        "radiate? Use σ = 5.67 × 10^-8 W/(m^2 K^4).",
        "Find the power radiated by a {A} cm^2 plate at {t} °C whose emissivity is {e}. "
        "Take the Stefan–Boltzmann constant as 5.67 × 10^-8 W/(m^2 K^4).",
        "How many watts of thermal radiation leave a hot object with a surface area of {A} "
        "cm^2, emissivity {e} and surface temperature {t} °C? (σ = 5.67 × 10^-8 "
        "W/(m^2 K^4))",
        "A steel billet fresh from a furnace is at {t} °C, with an exposed surface of {A} cm² and "
        "an emissivity of {e}. Using σ = 5.67 × 10^-8 W/(m² K⁴), how many watts does it lose by "
        "thermal radiation?",
        "What radiant power, in W, comes from a {A} cm^2 surface with emissivity {e} held at "
        "{t} °C? σ = 5.67 × 10^-8 W/(m^2 K^4).",
        "Quick one: A = {A} cm^2, ε = {e}, T = {t} °C, σ = 5.67 × 10^-8 W/(m^2 K^4). Radiated "
        "power in watts?",
        "The cast-iron lid of a wood-burning stove, with {A} square centimetres of surface exposed "
        "to the room, reaches {t} °C; its emissivity is {e}. With the Stefan–Boltzmann constant "
        "σ = 5.67 × 10^-8 W/(m²·K⁴), how much power does it give off as radiation, in W?",
        "A glowing heating element, {A} cm^2 in exposed area, runs at {t} °C with an "
        "emissivity of {e}. Using σ = 5.67 × 10^-8 W m^-2 K^-4, estimate the power it emits "
        "by radiation.",
    ), _radiated_power),
)
