"""Electricity and circuits: current, voltage, resistance, charge, capacitors and power."""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import random

from quanta.calculator import format_value
from quanta_physics.families.base import Calc, Family, Topic, Worked, num

_RESISTIVITIES = [("copper", "1.68", -8), ("aluminium", "2.65", -8), ("tungsten", "5.6", -8),
                  ("nichrome", "1.1", -6)]


def _ohms_law_current(rng: random.Random) -> Worked:
    v = rng.choice([1.5, 3, 4.5, 5, 6, 9, 12, 24, 48, 120, 230])
    r = rng.choice([2, 4, 5, 8, 10, 15, 22, 33, 47, 68, 100, 220, 470, 1000])
    i = Calc(f"{num(v)}/{r}")
    return Worked({"v": num(v), "r": r}, ("Ohm's law: I = V/R.", f"I = {i} A."), i.value, "A")


def _ohms_law_resistance(rng: random.Random) -> Worked:
    v = rng.choice([1.5, 3, 4.5, 5, 6, 9, 12, 24])
    i_ma = rng.choice([5, 10, 20, 25, 40, 50, 80, 100, 150, 200, 250, 500])
    r = Calc(f"{num(v)}/({i_ma}/1000)")
    return Worked({"v": num(v), "i": i_ma},
                  ("Ohm's law: R = V/I, with I in amperes (divide mA by 1000).",
                   f"R = {r} Ω."), r.value, "Ω")


def _coulomb_force(rng: random.Random) -> Worked:
    q1, q2, r_cm = rng.randint(1, 9), rng.randint(1, 9), rng.randint(2, 50)
    f = Calc(f"8.99e9*{q1}*1e-6*{q2}*1e-6/({r_cm}/100)**2")
    return Worked({"q1": q1, "q2": q2, "r": r_cm},
                  ("Coulomb's law: F = k q1 q2 / r^2, with charges in C and r in m.",
                   f"F = {f} N."), f.value, "N")


def _capacitor_energy(rng: random.Random) -> Worked:
    cap = rng.choice([1, 2.2, 4.7, 10, 22, 47, 100, 220, 470, 1000])
    v = rng.choice([5, 6, 9, 12, 24, 50, 100, 200])
    energy = Calc(f"0.5*{num(cap)}*1e-6*{v}**2")
    return Worked({"c": num(cap), "v": v},
                  ("Energy stored: E = (1/2)CV^2, with C in farads.", f"E = {energy} J."),
                  energy.value, "J")


def _electric_power(rng: random.Random) -> Worked:
    v, i = rng.choice([6, 12, 24, 110, 120, 230, 240]), round(rng.uniform(0.2, 12.0), 1)
    p = Calc(f"{v}*{num(i)}")
    return Worked({"v": v, "i": num(i)}, ("Electric power: P = VI.", f"P = {p} W."),
                  p.value, "W")


def _parallel_resistors(rng: random.Random) -> Worked:
    values = [1, 1.5, 2.2, 3.3, 4.7, 6.8, 10, 22, 47]
    r1, r2 = rng.choice(values), rng.choice(values)
    r = Calc(f"1/(1/({num(r1)}*1000) + 1/({num(r2)}*1000))")
    return Worked({"r1": num(r1), "r2": num(r2)},
                  ("Resistors in parallel: 1/R = 1/R1 + 1/R2, with each R in ohms "
                   "(multiply kΩ by 1000).", f"R = {r} Ω."), r.value, "Ω")


def _series_parallel_current(rng: random.Random) -> Worked:
    v = rng.choice([3, 4.5, 6, 9, 12, 24])
    r1 = rng.choice([10, 22, 33, 47, 68, 100, 150])
    r2, r3 = rng.choice([20, 47, 100, 220, 330]), rng.choice([30, 68, 150, 220, 470])
    par = Calc(f"1/(1/{r2} + 1/{r3})")
    total = Calc(f"{r1} + {format_value(par.value)}")
    i = Calc(f"{num(v)}/{format_value(total.value)}*1000")
    return Worked({"v": num(v), "r1": r1, "r2": r2, "r3": r3},
                  ("The parallel pair: 1/Rp = 1/R2 + 1/R3; then the total R = R1 + Rp and "
                   "I = V/R (multiply A by 1000 for mA).",
                   f"Rp = {par} Ω.", f"R = {total} Ω.", f"I = {i} mA."), i.value, "mA")


def _charge_from_current(rng: random.Random) -> Worked:
    i_ma, t_min = rng.randint(20, 900), rng.randint(2, 45)
    q = Calc(f"{i_ma}/1000*{t_min}*60")
    return Worked({"i": i_ma, "t": t_min},
                  ("Charge: Q = It, with I in amperes and t in seconds.", f"Q = {q} C."),
                  q.value, "C")


def _appliance_energy(rng: random.Random) -> Worked:
    v, i = rng.choice([110, 120, 230, 240]), round(rng.uniform(0.5, 10.0), 1)
    t_min = rng.randint(1, 20)
    energy = Calc(f"{v}*{num(i)}*{t_min}*60/1000")
    return Worked({"v": v, "i": num(i), "t": t_min},
                  ("Electrical energy: E = VIt, with t in seconds; divide J by 1000 for kJ.",
                   f"E = {energy} kJ."), energy.value, "kJ")


def _rc_time_constant(rng: random.Random) -> Worked:
    r_kohm = rng.choice([1, 2.2, 3.3, 4.7, 10, 22, 47, 100])
    c_uf = rng.choice([1, 2.2, 4.7, 10, 22, 47])
    tau = Calc(f"{num(r_kohm)}*1000*{num(c_uf)}*1e-6*1000")
    return Worked({"r": num(r_kohm), "c": num(c_uf)},
                  ("Time constant: τ = RC, with R in ohms and C in farads; multiply s by 1000 "
                   "for ms.", f"τ = {tau} ms."), tau.value, "ms")


def _point_charge_potential(rng: random.Random) -> Worked:
    q_nc, r_cm = rng.randint(1, 50), rng.randint(2, 60)
    v = Calc(f"8.99e9*{q_nc}*1e-9/({r_cm}/100)")
    return Worked({"q": q_nc, "r": r_cm},
                  ("Potential of a point charge: V = kq/r, with q in C and r in m.",
                   f"V = {v} V."), v.value, "V")


def _potential_difference_from_work(rng: random.Random) -> Worked:
    w_mj, q_uc = round(rng.uniform(0.5, 50.0), 1), rng.randint(2, 80)
    v = Calc(f"{num(w_mj)}/1000/({q_uc}*1e-6)")
    return Worked({"w": num(w_mj), "q": q_uc},
                  ("Potential difference: V = W/Q, with W in joules and Q in coulombs.",
                   f"V = {v} V."), v.value, "V")


def _terminal_voltage(rng: random.Random) -> Worked:
    emf, r_int = rng.choice([1.5, 3, 4.5, 6, 9, 12]), round(rng.uniform(0.1, 2.0), 1)
    r_ext = rng.randint(2, 30)
    i = Calc(f"{num(emf)}/({r_ext} + {num(r_int)})")
    v = Calc(f"{format_value(i.value)}*{r_ext}")
    return Worked({"emf": num(emf), "r_int": num(r_int), "r_ext": r_ext},
                  ("The current is I = ε/(R + r); the terminal voltage is V = IR "
                   "(equivalently ε − Ir).", f"I = {i} A.", f"V = {v} V."), v.value, "V")


def _wire_resistance(rng: random.Random) -> Worked:
    material, mantissa, power = rng.choice(_RESISTIVITIES)
    length, area = round(rng.uniform(0.5, 50.0), 1), rng.choice([0.5, 0.75, 1, 1.5, 2.5, 4])
    r = Calc(f"{mantissa}e{power}*{num(length)}/({num(area)}*1e-6)")
    return Worked({"material": material, "rho": f"{mantissa} × 10^{power}",
                   "l": num(length), "a": num(area)},
                  ("Resistance of a wire: R = ρL/A, with A in m^2 (1 mm^2 = 10^-6 m^2).",
                   f"R = {r} Ω."), r.value, "Ω")


def _power_dissipated(rng: random.Random) -> Worked:
    i_ma, r_kohm = rng.randint(5, 80), rng.choice([0.47, 1, 2.2, 3.3, 4.7, 10])
    p = Calc(f"({i_ma}/1000)**2*{num(r_kohm)}*1000")
    return Worked({"i": i_ma, "r": num(r_kohm)},
                  ("Power dissipated: P = I^2 R, with I in amperes and R in ohms.",
                   f"P = {p} W."), p.value, "W")


FAMILIES: tuple[Family, ...] = (
    Family("ohms_law_current", Topic.CIRCUITS, (
        "A {v} V battery is connected across a {r} Ω resistor. What current flows?",
        "What current passes through a {r} Ω resistor when a potential difference of {v} V "
        "is applied across it?",
        "A resistor of resistance {r} Ω sits across the terminals of a {v} V supply. Find the "
        "current in amperes.",
        "In the school lab, Priya sets a bench power supply to {v} V and clips its leads across "
        "a {r} Ω test resistor. What current, in amperes, does the series ammeter show?",
        "A model-railway enthusiast puts a {r} Ω resistor across the {v} V output of a "
        "transformer. How much current flows through the resistor?",
        "What is the current in amperes? The data: a single {r} Ω resistor across an ideal "
        "{v} V supply.",
        "Quick one: {v} volts across {r} ohms. Current?",
        "Connecting a {r}-ohm load directly to a {v}-volt source: how many amps does the "
        "circuit carry?",
    ), _ohms_law_current),
    Family("ohms_law_resistance", Topic.CIRCUITS, (
        "A {v} V supply drives {i} mA through a resistor. What is its resistance in ohms?",
        "When {v} V is applied across a component, an ammeter reads {i} mA. Find the "
        "component's resistance.",
        "What resistance lets exactly {i} mA flow from a {v} V source?",
        "Tom tests an unknown resistor from his electronics kit: with a {v} V battery across it, "
        "his multimeter shows {i} mA. What resistance, in ohms, does the resistor have?",
        "A sensor module on a drone draws {i} mA from its {v} V regulator. Treating the module "
        "as a simple resistor, what is its resistance in Ω?",
        "Find the resistance in ohms, given that the potential difference is {v} V and the "
        "measured current is {i} mA.",
        "Quick one: {i} mA at {v} V. Resistance in ohms?",
        "A lamp filament carries a current of {i} milliamps while the voltage across it is "
        "{v} volts. How many ohms is its resistance at this point?",
    ), _ohms_law_resistance),
    Family("coulomb_force", Topic.CIRCUITS, (
        "Two point charges of {q1} μC and {q2} μC are {r} cm apart. What is the force between "
        "them? Use k = 8.99 × 10^9 N m^2/C^2.",
        "Find the electrostatic force between a {q1} μC charge and a {q2} μC charge separated "
        "by {r} cm (k = 8.99 × 10^9 N m^2/C^2).",
        "Two small charged spheres carrying {q1} μC and {q2} μC have their centres {r} cm "
        "apart. How large is the force each exerts on the other? Take k = 8.99 × 10^9 "
        "N m^2/C^2.",
        "With Coulomb's constant 8.99 × 10^9 N m²/C², how strongly do charges of {q1} "
        "microcoulombs and {q2} microcoulombs push each other apart at a distance of {r} cm?",
    ), _coulomb_force),
    Family("capacitor_energy", Topic.CIRCUITS, (
        "A {c} μF capacitor is charged to {v} V. How much energy does it store?",
        "How much energy, in joules, is held in a {c} μF capacitor with {v} V across its "
        "plates?",
        "A camera flash capacitor of {c} μF is charged to a potential difference of {v} V. "
        "Find the stored energy.",
        "A student charges a {c} μF electrolytic capacitor on the lab bench until a voltmeter "
        "across it reads {v} V. How much energy, in joules, is now stored in its electric field?",
        "The smoothing capacitor in an audio amplifier's power supply is rated {c} μF and sits "
        "at {v} V while the amplifier plays. What energy does it hold?",
        "What energy is stored in a capacitor? Its capacitance is {c} μF and the potential "
        "difference between its plates is {v} V.",
        "Quick one: {c} μF charged to {v} V. Stored energy in J?",
        "The voltage across a {c} microfarad capacitor reaches {v} volts. What energy could "
        "it release on discharging fully?",
    ), _capacitor_energy),
    Family("electric_power", Topic.CIRCUITS, (
        "A heater draws {i} A from a {v} V supply. What power does it use?",
        "What is the power rating of an appliance that takes a current of {i} A at {v} V?",
        "A {v} V motor runs with {i} A flowing through it. Find its electrical power input "
        "in watts.",
        "A soldering station on Ana's workbench runs on {v} V and pulls a current of {i} A. "
        "What is its power consumption in watts?",
        "A string of LED lights on a festival stage draws {i} amperes when connected to {v} V. "
        "How many watts does it use?",
        "What power, in W, does a device take? It is supplied with {v} V and carries {i} A.",
        "Quick one: {v} V, {i} A. Power?",
        "Hooked up to a {v}-volt source, a small electric pump pulls {i} amps. At what rate "
        "does it convert electrical energy?",
    ), _electric_power),
    Family("parallel_resistors", Topic.CIRCUITS, (
        "Resistors of {r1} kΩ and {r2} kΩ are connected in parallel. What is their combined "
        "resistance in ohms?",
        "Find the equivalent resistance, in Ω, of a {r1} kΩ resistor in parallel with a {r2} "
        "kΩ resistor.",
        "A {r1} kΩ and a {r2} kΩ resistor are wired side by side between the same two nodes. "
        "What single resistance in ohms could replace them?",
        "While repairing an old radio, Sam solders a {r1} kΩ resistor in parallel with a {r2} "
        "kΩ one on the circuit board. What resistance, in ohms, does the combination give?",
        "In a guitar pedal's tone circuit, resistors of {r1} kΩ and {r2} kΩ are connected in "
        "parallel. Find their effective resistance in Ω.",
        "What equivalent resistance, in ohms, do two resistors in parallel give? Their values "
        "are {r1} kΩ and {r2} kΩ.",
        "Quick one: {r1} kΩ in parallel with {r2} kΩ. Total in ohms?",
        "Two branches, one of {r1} kilohms and one of {r2} kilohms, share the same pair of "
        "terminals. How many ohms does the pair present to the circuit?",
    ), _parallel_resistors),
    Family("series_parallel_current", Topic.CIRCUITS, (
        "A {v} V battery drives a {r1} Ω resistor in series with a parallel pair of {r2} Ω "
        "and {r3} Ω. What current, in mA, does the battery supply?",
        "Resistors of {r2} Ω and {r3} Ω in parallel are connected in series with {r1} Ω "
        "across a {v} V source. Find the current from the source in milliamps.",
        "A circuit has a {r1} Ω resistor followed by two resistors of {r2} Ω and {r3} Ω in "
        "parallel, all powered by {v} V. How many mA flow through the {r1} Ω resistor?",
        "Lena builds a circuit on a breadboard: a {v} V battery pack feeds a {r1} Ω resistor, "
        "after which the current splits between two parallel resistors of {r2} Ω and {r3} Ω. "
        "What current, in mA, leaves the battery?",
        "In a toy car, a {r1} Ω current-limiting resistor feeds two headlight bulbs of {r2} Ω "
        "and {r3} Ω connected in parallel, all run from {v} V. Treating the bulbs as resistors, "
        "find the total current in milliamps.",
        "How many mA does the source deliver? A {v} V supply is connected to a {r1} Ω resistor "
        "in series with {r2} Ω and {r3} Ω resistors that are in parallel with each other.",
        "Quick one: {v} V, {r1} Ω in series with ({r2} Ω parallel {r3} Ω). Total current in mA?",
        "Across a {v}-volt supply sits a {r1}-ohm resistor leading into a parallel "
        "combination of {r2} ohms and {r3} ohms. Determine the total current drawn, in mA.",
    ), _series_parallel_current),
    Family("charge_from_current", Topic.CIRCUITS, (
        "A current of {i} mA flows for {t} minutes. How much charge passes?",
        "How many coulombs flow through a circuit carrying {i} mA for {t} min?",
        "A phone charger delivers a steady {i} mA for {t} minutes. What charge does it "
        "deliver to the battery?",
        "Over a {t}-minute interval, a wire carries a constant {i} milliamps. Find the total "
        "charge that moves past any point.",
    ), _charge_from_current),
    Family("appliance_energy", Topic.CIRCUITS, (
        "A kettle draws {i} A from a {v} V supply for {t} minutes. How much energy does it "
        "use, in kJ?",
        "An appliance running at {v} V with a current of {i} A is switched on for {t} min. "
        "Find the electrical energy it consumes in kilojoules.",
        "How many kJ of energy does a {v} V heater transfer in {t} minutes if it takes {i} "
        "A?",
        "Jun heats his lunch in a microwave oven for {t} minutes; the oven takes {i} A at {v} V. "
        "How much electrical energy, in kJ, does it use?",
        "A vacuum cleaner is run for {t} min on a {v} V supply, drawing a current of {i} "
        "amperes. Find the energy transferred to it in kilojoules.",
        "How much energy, in kJ, is consumed? Supply voltage: {v} V; current: {i} A; running "
        "time: {t} minutes.",
        "Quick one: {v} V at {i} A for {t} min. Energy in kJ?",
        "For {t} minutes a hair dryer takes {i} amps from the {v}-volt mains. What is the "
        "energy supplied to it, in kilojoules?",
    ), _appliance_energy),
    Family("rc_time_constant", Topic.CIRCUITS, (
        "A {r} kΩ resistor is in series with a {c} μF capacitor. What is the time constant "
        "in ms?",
        "Find the RC time constant, in milliseconds, of a circuit with R = {r} kΩ and "
        "C = {c} μF.",
        "A {c} μF capacitor charges through a {r} kΩ resistor. How many ms is the circuit's "
        "time constant?",
        "The blinking circuit in a bike light uses a {r} kΩ resistor and a {c} μF capacitor to "
        "set its timing. What is the RC time constant in ms?",
        "In a physics practical, students charge a {c} μF capacitor from a battery through a "
        "{r} kΩ resistor and watch the voltage rise on a data logger. What time constant, in "
        "milliseconds, should they expect?",
        "What is the time constant τ, in ms? The series RC circuit has R = {r} kΩ and "
        "C = {c} μF.",
        "Quick one: {r} kΩ with {c} microfarads. Time constant in ms?",
        "How long, in milliseconds, does it take a {c} microfarad capacitor discharging "
        "through {r} kilohms to fall to 1/e of its starting voltage?",
    ), _rc_time_constant),
    Family("point_charge_potential", Topic.CIRCUITS, (
        "What is the electric potential {r} cm from a point charge of {q} nC? Use "
        "k = 8.99 × 10^9 N m^2/C^2.",
        "A small sphere carries {q} nC. Find the potential, in volts, at a distance of {r} cm "
        "from its centre (k = 8.99 × 10^9 N m^2/C^2).",
        "Taking k = 8.99 × 10^9 N m^2/C^2, calculate the potential at a point {r} cm away "
        "from an isolated {q} nC charge.",
        "In an electrostatics lab, a tiny charged bead carries {q} nC. A probe is held {r} cm "
        "from the bead. What potential, in volts, does the probe sit at? (k = 8.99 × 10^9 "
        "N m^2/C^2)",
        "A balloon rubbed on a jumper picks up {q} nC of charge, which can be treated as a point "
        "charge. With k = 8.99 × 10^9 N m²/C², what is the electric potential {r} cm from it?",
        "Find the potential in V. Given: point charge q = {q} nC, distance r = {r} cm, "
        "k = 8.99 × 10^9 N m^2/C^2.",
        "Quick one: a {q} nC point charge, {r} cm away, k = 8.99 × 10^9 N m²/C². Potential?",
        "How many volts above zero (at infinity) is a spot located {r} centimetres from a "
        "{q} nanocoulomb point charge? Coulomb's constant is 8.99 × 10^9 N m²/C².",
    ), _point_charge_potential),
    Family("potential_difference_from_work", Topic.CIRCUITS, (
        "Moving a {q} μC charge between two points takes {w} mJ of work. What is the "
        "potential difference between the points?",
        "An electric field does {w} mJ of work on a charge of {q} μC. Find the potential "
        "difference it moves through.",
        "What voltage exists between two plates if carrying {q} μC from one to the other "
        "requires {w} mJ?",
        "In a particle-detector test rig, an electric field accelerates ions with a total "
        "charge of {q} μC, doing {w} mJ of work on them. What potential difference, in volts, "
        "did the ions move through?",
        "Inside a photocopier, the drum's electric field moves toner carrying {q} μC of charge "
        "and does {w} mJ of work in the process. Find the voltage involved.",
        "What is the potential difference in volts? Work done: {w} mJ; charge moved: {q} μC.",
        "Quick one: {w} mJ of work to move {q} μC. Voltage?",
        "It costs {w} millijoules of energy to push {q} microcoulombs of charge from A to B. "
        "How many volts separate A and B?",
    ), _potential_difference_from_work),
    Family("terminal_voltage", Topic.CIRCUITS, (
        "A battery of emf {emf} V and internal resistance {r_int} Ω is connected to a {r_ext} "
        "Ω resistor. What is the terminal voltage?",
        "A cell with emf {emf} V has an internal resistance of {r_int} Ω. Find the voltage "
        "across its terminals when it drives an external {r_ext} Ω load.",
        "An external resistor of {r_ext} Ω is connected to a source of emf {emf} V whose "
        "internal resistance is {r_int} Ω. What potential difference appears across the "
        "resistor?",
        "A portable radio with an effective resistance of {r_ext} Ω runs from a battery of emf "
        "{emf} V and internal resistance {r_int} Ω. What potential difference is across the "
        "radio?",
        "During a practical, Omar connects a {r_ext} ohm resistor to a cell whose emf is {emf} "
        "volts and whose internal resistance is {r_int} ohms. What is the potential difference "
        "across the cell's terminals, in volts?",
        "What is the terminal voltage, in V? Given: emf ε = {emf} V, internal resistance "
        "r = {r_int} Ω, external resistance R = {r_ext} Ω.",
        "Quick one: ε = {emf} V, r = {r_int} Ω, load {r_ext} Ω. Terminal p.d.?",
        "A voltmeter is placed across a {emf}-volt battery (internal resistance {r_int} ohms) "
        "while the battery powers a {r_ext}-ohm lamp. What does the meter read?",
    ), _terminal_voltage),
    Family("wire_resistance", Topic.CIRCUITS, (
        "A {material} wire is {l} m long with a cross-section of {a} mm^2. Its resistivity is "
        "{rho} Ω m. What is its resistance?",
        "Find the resistance of {l} m of {material} wire of cross-sectional area {a} mm^2, "
        "given a resistivity of {rho} Ω m.",
        "The resistivity of {material} is {rho} Ω m. What resistance does a {l} m length of "
        "it have if its cross-section is {a} mm^2?",
        "Aisha unwinds {l} m of {material} wire from a spool for an experiment. The wire's "
        "cross-sectional area is {a} mm^2 and {material} has a resistivity of {rho} Ω m. What "
        "resistance does this length have?",
        "The feed wire for a garden model railway is {l} metres of {material} with a "
        "cross-sectional area of {a} mm². Taking ρ = {rho} Ω m, find the wire's resistance.",
        "What is the resistance, in Ω, of a wire with these properties? Material: {material}; "
        "length: {l} m; cross-sectional area: {a} mm^2; resistivity: {rho} Ω m.",
        "Quick one: {l} m of {material}, A = {a} mm², ρ = {rho} Ω m. R = ?",
        "An electrician cuts a {l}-metre piece of {material} cable whose conductor has an "
        "area of {a} mm² (ρ = {rho} Ω m). How many ohms does it measure end to end?",
    ), _wire_resistance),
    Family("power_dissipated", Topic.CIRCUITS, (
        "A current of {i} mA flows through a {r} kΩ resistor. What power does it dissipate?",
        "How much power, in watts, is turned into heat in a {r} kΩ resistor carrying {i} mA?",
        "Find the power lost as heat when {i} mA passes through a resistance of {r} kΩ.",
        "On the circuit board of a home weather station, a {r} kΩ resistor carries {i} mA. "
        "How much power, in watts, does it dissipate?",
        "An engineer testing a prototype amplifier measures {i} milliamps through a {r} kΩ "
        "resistor. What power, in W, is being dissipated in it?",
        "How many watts are dissipated? The resistor is {r} kΩ and the current through it is "
        "{i} mA.",
        "Quick one: {i} mA through {r} kΩ. Power in watts?",
        "A {r}-kilohm resistor warms up while {i} milliamps run through it. At what rate, in "
        "watts, is it producing heat?",
    ), _power_dissipated),
)
