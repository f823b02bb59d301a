"""Magnetism: forces on currents and moving charges, magnetic fields and induction."""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import random

from quanta.calculator import format_value
from quanta_physics.families.base import Calc, Family, Topic, Worked, num

_MU0 = "μ0 = 4π × 10^-7 T m/A"
_CHARGE = "e = 1.6 × 10^-19 C"
_MASS = "m = 1.67 × 10^-27 kg"


def _force_on_wire(rng: random.Random) -> Worked:
    b, i, length = round(rng.uniform(0.1, 1.5), 2), rng.randint(1, 20), \
        round(rng.uniform(0.1, 2.0), 2)
    f = Calc(f"{num(b)}*{i}*{num(length)}")
    return Worked({"b": num(b), "i": i, "l": num(length)},
                  ("F = BIL for a wire perpendicular to the field.", f"F = {f} N."),
                  f.value, "N")


def _force_on_wire_angle(rng: random.Random) -> Worked:
    b, i, l_cm = round(rng.uniform(0.05, 0.8), 2), rng.randint(1, 15), rng.randint(5, 60)
    theta = rng.choice([20, 30, 37, 45, 53, 60, 75])
    f = Calc(f"{num(b)}*{i}*{l_cm}/100*sin(radians({theta}))*1000")
    return Worked({"b": num(b), "i": i, "l": l_cm, "theta": theta},
                  ("F = BIL sin θ, with L in metres; multiply N by 1000 for mN.",
                   f"F = {f} mN."), f.value, "mN")


def _force_on_moving_charge(rng: random.Random) -> Worked:
    v_kms, b = rng.randint(100, 5000), round(rng.uniform(0.05, 2.0), 2)
    f = Calc(f"1.6e-19*{v_kms}*1000*{num(b)}")
    return Worked({"v": v_kms, "b": num(b)},
                  ("Magnetic force on a charge moving across the field: F = qvB, with v in m/s.",
                   f"F = {f} N."), f.value, "N")


def _proton_path_radius(rng: random.Random) -> Worked:
    v_kms, b = rng.randint(200, 3000), round(rng.uniform(0.2, 1.2), 2)
    r = Calc(f"1.67e-27*{v_kms}*1000/(1.6e-19*{num(b)})*100")
    return Worked({"v": v_kms, "b": num(b)},
                  ("qvB supplies the centripetal force mv^2/r, so r = mv/(qB), with v in m/s; "
                   "multiply m by 100 for cm.", f"r = {r} cm."), r.value, "cm")


def _straight_wire_field(rng: random.Random) -> Worked:
    i, r_cm = rng.randint(1, 50), rng.randint(1, 30)
    b = Calc(f"4*pi*1e-7*{i}/(2*pi*{r_cm}/100)")
    return Worked({"i": i, "r": r_cm},
                  ("Field of a long straight wire: B = μ0 I/(2πr), with r in metres.",
                   f"B = {b} T."), b.value, "T")


def _solenoid_field(rng: random.Random) -> Worked:
    n_cm, i = rng.randint(5, 50), round(rng.uniform(0.2, 5.0), 1)
    b = Calc(f"4*pi*1e-7*{n_cm}*100*{num(i)}")
    return Worked({"n": n_cm, "i": num(i)},
                  ("Field inside a long solenoid: B = μ0 n I, with n in turns per metre "
                   "(multiply turns per cm by 100).", f"B = {b} T."), b.value, "T")


def _faraday_emf(rng: random.Random) -> Worked:
    n, a_cm2, b = rng.randint(10, 500), rng.randint(10, 200), round(rng.uniform(0.1, 1.2), 2)
    theta, t_ms = rng.choice([0, 30, 45, 60]), rng.randint(10, 400)
    flux = Calc(f"{num(b)}*{a_cm2}*1e-4*cos(radians({theta}))")
    emf = Calc(f"{n}*{format_value(flux.value)}/({t_ms}/1000)")
    return Worked({"n": n, "a": a_cm2, "b": num(b), "theta": theta, "t": t_ms},
                  ("The flux through one turn is Φ = BA cos θ, with A in m^2 (1 cm^2 = 10^-4 "
                   "m^2); Faraday's law gives the average emf = NΔΦ/Δt, with Δt in seconds.",
                   f"ΔΦ = {flux} Wb.", f"emf = {emf} V."), emf.value, "V")


def _moving_rod_emf(rng: random.Random) -> Worked:
    b, l_cm, v = round(rng.uniform(0.1, 1.5), 2), rng.randint(10, 100), \
        round(rng.uniform(0.5, 10.0), 1)
    emf = Calc(f"{num(b)}*{l_cm}/100*{num(v)}")
    return Worked({"b": num(b), "l": l_cm, "v": num(v)},
                  ("Motional emf: emf = BLv, with L in metres.", f"emf = {emf} V."),
                  emf.value, "V")


def _rod_induced_current(rng: random.Random) -> Worked:
    b, l_cm, v = round(rng.uniform(0.2, 1.5), 2), rng.randint(10, 80), rng.randint(1, 12)
    r = rng.choice([2, 5, 10, 20, 50])
    emf = Calc(f"{num(b)}*{l_cm}/100*{v}")
    i = Calc(f"{format_value(emf.value)}/{r}*1000")
    return Worked({"b": num(b), "l": l_cm, "v": v, "r": r},
                  ("The rod's emf is BLv (L in metres); the current is I = emf/R, multiplied by "
                   "1000 for mA.", f"emf = {emf} V.", f"I = {i} mA."), i.value, "mA")


def _transformer_voltage(rng: random.Random) -> Worked:
    vp = rng.choice([110, 120, 230, 240])
    n_p, n_s = rng.choice([100, 200, 400, 500, 1000, 1200]), rng.choice([20, 50, 60, 2000, 5000])
    vs = Calc(f"{vp}*{n_s}/{n_p}")
    return Worked({"vp": vp, "np": n_p, "ns": n_s},
                  ("Ideal transformer: Vs/Vp = Ns/Np, so Vs = Vp Ns/Np.", f"Vs = {vs} V."),
                  vs.value, "V")


def _transformer_current(rng: random.Random) -> Worked:
    vp, vs_kv = rng.choice([110, 120, 230, 240]), rng.choice([2, 3.3, 6.6, 11, 33])
    ip = round(rng.uniform(0.5, 15.0), 1)
    i_s = Calc(f"{vp}*{num(ip)}/({num(vs_kv)}*1000)*1000")
    return Worked({"vp": vp, "vs": num(vs_kv), "ip": num(ip)},
                  ("An ideal transformer loses no power: Vp Ip = Vs Is, so Is = Vp Ip/Vs, with "
                   "Vs in volts; multiply A by 1000 for mA.", f"Is = {i_s} mA."),
                  i_s.value, "mA")


def _parallel_wires_force(rng: random.Random) -> Worked:
    i1, i2, d_cm = rng.randint(2, 40), rng.randint(2, 40), rng.randint(1, 20)
    length = round(rng.uniform(0.5, 5.0), 1)
    f = Calc(f"4*pi*1e-7*{i1}*{i2}*{num(length)}/(2*pi*{d_cm}/100)*1000")
    return Worked({"i1": i1, "i2": i2, "d": d_cm, "l": num(length)},
                  ("Force between parallel currents: F = μ0 I1 I2 L/(2πd), with d in metres; "
                   "multiply N by 1000 for mN.", f"F = {f} mN."), f.value, "mN")


def _cyclotron_frequency(rng: random.Random) -> Worked:
    b = round(rng.uniform(0.2, 2.0), 2)
    f = Calc(f"1.6e-19*{num(b)}/(2*pi*1.67e-27)/1e6")
    return Worked({"b": num(b)},
                  ("Cyclotron frequency: f = qB/(2πm); divide Hz by 10^6 for MHz.",
                   f"f = {f} MHz."), f.value, "MHz")


FAMILIES: tuple[Family, ...] = (
    Family("force_on_wire", Topic.MAGNETISM, (
        "A straight wire {l} m long carries {i} A at right angles to a {b} T magnetic field. "
        "What force acts on it?",
        "Find the magnetic force on a {l} m length of wire carrying a current of {i} A "
        "perpendicular to a uniform {b} T field.",
        "A {b} T field crosses a conductor at 90°. The conductor is {l} m long and carries "
        "{i} A. How large is the force on it?",
        "In a school lab, a technician clamps a {l} m copper wire so that it runs perpendicular "
        "to the uniform {b} T field of an electromagnet, then switches on a {i} A current. "
        "What magnetic force does the wire experience?",
        "A current balance in a metrology lab holds a horizontal conductor {l} metres long at "
        "right angles to a {b} T field. When {i} amperes flow through it, how big is the "
        "magnetic force on the conductor, in N?",
        "What is the magnetic force on a current-carrying wire? Data: length {l} m, current "
        "{i} A, field {b} T, wire perpendicular to the field.",
        "Quick one: {i} A through {l} m of wire, {b} T field at right angles to it. Force?",
        "Between the poles of a magnet the field is {b} tesla. A {l}-metre rod lying across "
        "the field passes {i} amperes. With what force, in newtons, is it pushed sideways?",
    ), _force_on_wire),
    Family("force_on_wire_angle", Topic.MAGNETISM, (
        "A {l} cm wire carrying {i} A makes an angle of {theta}° with a {b} T magnetic field. "
        "What force acts on it, in mN?",
        "Find the force, in millinewtons, on a {l} cm segment of wire with a current of {i} "
        "A, lying at {theta}° to a uniform field of {b} T.",
        "A current of {i} A flows along a {l} cm conductor inclined at {theta}° to a {b} T "
        "field. How many mN of magnetic force does it feel?",
        "An engineer testing a motor notes that one {l} cm section of its winding, carrying "
        "{i} A, lies at {theta}° to the {b} T field of the stator. How many millinewtons of "
        "force act on that section?",
        "During a demonstration, a teacher hangs a {l} cm length of wire in a {b} T field so "
        "that it makes an angle of {theta} degrees with the field lines, then passes {i} A "
        "through it. What force, in mN, does the wire feel?",
        "How large, in mN, is the magnetic force on a wire when {i} A flows through {l} cm of "
        "it at an angle of {theta}° to a {b} T field?",
        "Quick one: B = {b} T, I = {i} A, L = {l} cm, angle between wire and field {theta}°. "
        "Force in mN?",
        "In a {b}-tesla field, a straight lead {l} centimetres long runs {theta} degrees off "
        "the field direction and carries {i} amps. What is the size of the sideways force in "
        "mN?",
    ), _force_on_wire_angle),
    Family("force_on_moving_charge", Topic.MAGNETISM, (
        "A proton moves at {v} km/s perpendicular to a {b} T magnetic field. What magnetic "
        f"force acts on it? Use {_CHARGE}.",
        f"Find the force on a proton ({_CHARGE}) travelling at {{v}} km/s at right angles to "
        "a uniform {b} T field.",
        "An electron crosses a {b} T field at right angles with a speed of {v} km/s. How "
        f"large is the magnetic force on it? The electron's charge has magnitude {_CHARGE}.",
        f"Inside a mass spectrometer, a singly charged ion (charge {_CHARGE}) flies at {{v}} "
        "kilometres per second straight across a {b}-tesla field. What sideways force, in "
        "newtons, does the field exert?",
    ), _force_on_moving_charge),
    Family("proton_path_radius", Topic.MAGNETISM, (
        "A proton moving at {v} km/s enters a {b} T magnetic field at right angles. What is "
        f"the radius of its circular path in cm? Use {_CHARGE} and {_MASS}.",
        f"Find the radius, in centimetres, of the circle traced by a proton ({_CHARGE}, "
        f"{_MASS}) with speed {{v}} km/s in a uniform {{b}} T field perpendicular to "
        "its velocity.",
        "A {b} T field bends a beam of protons travelling at {v} km/s into a circle. How "
        f"many cm is the circle's radius? Take {_CHARGE} and {_MASS}.",
        "In a proton-therapy centre, a bending magnet produces a {b} T field perpendicular to a "
        "beam of protons travelling at {v} km/s. What is the radius of the beam's circular arc, "
        f"in cm? Use {_CHARGE} and {_MASS}.",
        "A physics student watches a proton, moving at {v} kilometres per second, curve "
        "inside a bubble chamber whose {b} T field is at right angles to its motion. How many "
        f"centimetres is the radius of its track? Take {_CHARGE} and {_MASS}.",
        f"How many centimetres is the orbit radius? A proton ({_MASS}, {_CHARGE}) travels "
        "at {v} km/s at right angles to a uniform {b} T magnetic field.",
        "Quick one: proton at {v} km/s, {b} T field perpendicular to its velocity, "
        f"{_CHARGE}, {_MASS}. Radius of the circle in cm?",
        "Protons (mass 1.67 × 10^-27 kg, charge 1.6 × 10^-19 C) are fired at {v} kilometres "
        "per second into a region where a {b}-tesla field points straight across their path. "
        "What radius of curvature, in centimetres, do they follow?",
    ), _proton_path_radius),
    Family("straight_wire_field", Topic.MAGNETISM, (
        "A long straight wire carries {i} A. What is the magnetic field {r} cm from it? "
        f"Use {_MU0}.",
        "Find the magnetic flux density at a distance of {r} cm from a long wire carrying "
        f"{{i}} A ({_MU0}).",
        f"Taking {_MU0}, calculate the field strength in tesla {{r}} cm away from a long "
        "straight conductor with a current of {i} A.",
        "A welder's lead carries a steady {i} A along a long straight run, and a compass rests "
        "{r} cm from it. What magnetic field, in tesla, does the lead produce at the compass? "
        f"Use {_MU0}.",
        "In a lab, a student holds a Hall probe {r} centimetres from a long straight wire "
        "carrying {i} amperes. What field due to the wire, in T, should the probe read? "
        f"Take {_MU0}.",
        f"What is B, in tesla, {{r}} cm from an infinitely long wire carrying {{i}} A? ({_MU0})",
        f"Quick one: long straight wire, I = {{i}} A, distance {{r}} cm, {_MU0}. Field in T?",
        "A long, straight power cable carries {i} amperes. How strong, in tesla, is its "
        "magnetic field at a point {r} centimetres from the cable? The "
        "permeability of free space is 4π × 10^-7 T m/A.",
    ), _straight_wire_field),
    Family("solenoid_field", Topic.MAGNETISM, (
        "A long solenoid has {n} turns per cm and carries {i} A. What is the magnetic field "
        f"inside it? Use {_MU0}.",
        "Find the field inside a long solenoid wound with {n} turns per centimetre when a "
        f"current of {{i}} A flows ({_MU0}).",
        f"With {_MU0}, what flux density in tesla does a current of {{i}} A produce inside a "
        "long coil of {n} turns per cm?",
        "A research group builds a test magnet: a long air-cored solenoid with {n} turns per "
        "cm, energised with {i} A. What field, in tesla, does it produce inside? "
        f"Use {_MU0}.",
        "An engineer designing a relay drives {i} amperes through a long coil wound at {n} "
        "turns per centimetre. What magnetic flux density, in T, is set up inside the coil? "
        f"Take {_MU0}.",
        "What is the field inside a long solenoid? It has {n} turns per cm and carries {i} A; "
        f"{_MU0}.",
        f"Quick one: solenoid, n = {{n}} turns/cm, I = {{i}} A, {_MU0}. B inside?",
        "A physics student winds wire tightly around a long tube, {n} turns to every "
        "centimetre, and passes {i} amps through it. How many tesla is the field deep inside "
        "the coil? (μ0 is 4π × 10^-7 T m/A.)",
    ), _solenoid_field),
    Family("faraday_emf", Topic.MAGNETISM, (
        "A coil of {n} turns and area {a} cm^2 sits in a {b} T field whose direction makes "
        "{theta}° with the coil's normal. The field drops to zero in {t} ms. What average "
        "emf is induced?",
        "Find the average emf induced in a {n}-turn coil of area {a} cm^2 when a {b} T field, "
        "at {theta}° to the normal of the coil, is switched off over {t} ms.",
        "A {b} T magnetic field passes through a {n}-turn loop of area {a} cm^2 at {theta}° "
        "to its normal. If the field falls to zero in {t} ms, what is the average induced "
        "emf?",
        "An induction sensor coil of {n} turns, each of area {a} cm², sits in a {b} T field "
        "from an electromagnet, the field making {theta}° with the coil's normal. When the "
        "electromagnet is switched off, the field collapses to zero in {t} ms. What average "
        "emf does the sensor pick up?",
        "A lab student holds a {n}-turn search coil of area {a} cm^2 between the poles of a "
        "{b} T magnet, tilted so the field is at {theta}° to the coil's normal, then yanks it "
        "clear of the field in {t} ms. What average voltage is induced?",
        "What average emf is induced? Data: {n} turns, area {a} cm², field {b} T at {theta}° "
        "to the normal, field reduced to zero in {t} milliseconds.",
        "Quick one: N = {n}, A = {a} cm^2, B = {b} T at {theta}° to the normal, drops to 0 in "
        "{t} ms. Average emf in volts?",
        "Over {t} milliseconds, a {b}-tesla field threading a coil ({n} turns, each enclosing "
        "{a} square centimetres, with the field at {theta} degrees from the coil's axis) is "
        "removed completely. How many volts does the coil generate on average?",
    ), _faraday_emf),
    Family("moving_rod_emf", Topic.MAGNETISM, (
        "A metal rod {l} cm long moves at {v} m/s perpendicular to a {b} T magnetic field. "
        "What emf is induced between its ends?",
        "Find the emf across a {l} cm conductor moving at {v} m/s at right angles to a "
        "uniform field of {b} T.",
        "A {b} T field is perpendicular to a rail track on which a {l} cm bar slides at "
        "{v} m/s. What emf does the bar produce?",
        "A straight conductor {l} centimetres long sweeps through a "
        "{b}-tesla field at {v} metres per second, cutting the field lines squarely. How many "
        "volts appear between its ends?",
    ), _moving_rod_emf),
    Family("rod_induced_current", Topic.MAGNETISM, (
        "A {l} cm rod slides at {v} m/s along rails in a {b} T field perpendicular to the "
        "rails. The rails are joined by a {r} Ω resistor. What current flows, in mA?",
        "A conducting bar of length {l} cm moves at {v} m/s through a {b} T field at right "
        "angles, completing a circuit of total resistance {r} Ω. Find the induced current "
        "in milliamps.",
        "In a {b} T field, a {l} cm metal rod is pulled at {v} m/s across two rails connected "
        "by {r} Ω. How many mA does the circuit carry?",
        "On a lab bench, a {l} cm copper bar is pushed at {v} m/s along two metal tracks in a "
        "{b} T field perpendicular to them, and the tracks are wired to a {r} Ω resistor. What "
        "current, in milliamps, flows?",
        "In a science-museum generator exhibit, a visitor slides a {l} cm metal bar along "
        "conducting guides at {v} metres per second through a {b} T field at right angles; "
        "the circuit's total resistance is {r} ohms. How many mA does the meter show?",
        "How many milliamps flow when a {l} cm rod moves at {v} m/s across a {b} T field at "
        "right angles and the circuit it completes has a resistance of {r} Ω?",
        "Quick one: rod {l} cm, speed {v} m/s, B = {b} T perpendicular, R = {r} ohms. Current "
        "in mA?",
        "Two parallel rails {l} centimetres apart are bridged at one end by a {r}-ohm "
        "resistor; a bar rolls along them at {v} metres per second while a {b}-tesla field "
        "points straight through the loop. What is the current in the resistor, in mA?",
    ), _rod_induced_current),
    Family("transformer_voltage", Topic.MAGNETISM, (
        "An ideal transformer has {np} turns on its primary and {ns} turns on its secondary. "
        "The primary is connected to {vp} V. What is the secondary voltage?",
        "A {vp} V supply feeds the {np}-turn primary of an ideal transformer whose secondary "
        "has {ns} turns. Find the output voltage.",
        "What voltage appears across a {ns}-turn secondary coil when the {np}-turn primary of "
        "an ideal transformer is driven at {vp} V?",
        "A hobbyist building a power supply connects a {vp} V AC source to the {np}-turn "
        "primary of an ideal transformer whose secondary has {ns} turns. What voltage comes "
        "out of the secondary?",
        "In a physics practical, students drive a {np}-turn coil on a laminated iron core "
        "from a {vp} volt alternating supply and wind a {ns}-turn coil on the other side of "
        "the core. Treating it as an ideal transformer, what voltage do they measure on the "
        "second coil?",
        "What is the output voltage of an ideal transformer with Np = {np}, Ns = {ns} and a "
        "{vp} V input?",
        "Quick one: {vp} V in, {np} turns on the primary, {ns} on the secondary, ideal. "
        "Volts out?",
        "Plugged into {vp}-volt mains, a perfect transformer with {np} primary windings and "
        "{ns} secondary windings delivers what voltage at its output?",
    ), _transformer_voltage),
    Family("transformer_current", Topic.MAGNETISM, (
        "An ideal transformer steps {vp} V up to {vs} kV. The primary current is {ip} A. "
        "What is the secondary current in mA?",
        "A {vp} V input is raised to {vs} kV by an ideal transformer drawing {ip} A on the "
        "primary side. Find the secondary current in milliamps.",
        "The primary of an ideal transformer takes {ip} A at {vp} V, and its output is "
        "{vs} kV. How many mA flow in the secondary?",
        "A small wind turbine's {vp} V output goes into an ideal transformer that raises it "
        "to {vs} kV for the grid. If the primary carries {ip} A, what is the current on the "
        "grid side in mA?",
        "An X-ray machine's high-voltage supply uses an ideal transformer that draws {ip} A "
        "from a {vp} V line and delivers {vs} kV. What secondary current, in milliamps, does "
        "it supply?",
        "How many mA flow in the secondary of an ideal transformer whose primary takes {ip} A "
        "at {vp} V and whose secondary runs at {vs} kV?",
        "Quick one: ideal transformer, {vp} V and {ip} A in, {vs} kV out. Secondary current "
        "in mA?",
        "With no losses, a step-up transformer converts {vp} volts into {vs} kilovolts. If "
        "{ip} amps enter the primary, what current leaves the secondary, in milliamperes?",
    ), _transformer_current),
    Family("parallel_wires_force", Topic.MAGNETISM, (
        "Two long parallel wires {d} cm apart carry currents of {i1} A and {i2} A. What "
        f"force acts on a {{l}} m length of each wire, in mN? Use {_MU0}.",
        "Find the magnetic force, in millinewtons, between {l} m lengths of two parallel "
        f"conductors {{d}} cm apart that carry {{i1}} A and {{i2}} A ({_MU0}).",
        "Currents of {i1} A and {i2} A flow in two straight parallel wires separated by {d} "
        f"cm. Taking {_MU0}, how many mN does each {{l}} m section experience?",
        "In a lab, two long parallel wires are strung {d} cm apart; one carries {i1} A and "
        "the other {i2} A. What magnetic force, in mN, acts between {l} m lengths of them? "
        f"Take {_MU0}.",
        "During a jump start, two straight jumper cables lie parallel, {d} centimetres apart, "
        "carrying {i1} A and {i2} A. How many millinewtons of force does a {l}-metre length "
        f"of one cable exert on the other? Use {_MU0}.",
        "What force in mN does each {l} m length feel when two long parallel wires {d} cm "
        f"apart carry {{i1}} A and {{i2}} A? ({_MU0})",
        "Quick one: parallel wires, I1 = {i1} A, I2 = {i2} A, d = {d} cm, L = {l} m, "
        f"{_MU0}. Force in mN?",
        "Two busbars run side by side, {d} centimetres apart, with {i1} amps in one and {i2} "
        "amps in the other. What force in mN does each {l}-metre stretch exert on the other? "
        "The permeability of free space is 4π × 10^-7 T m/A.",
    ), _parallel_wires_force),
    Family("cyclotron_frequency", Topic.MAGNETISM, (
        "What is the cyclotron frequency of a proton in a {b} T magnetic field, in MHz? Use "
        f"{_CHARGE} and {_MASS}.",
        f"Find, in MHz, how many times per second a proton ({_CHARGE}, {_MASS}) "
        "circles in a uniform {b} T field.",
        "A cyclotron uses a {b} T magnet to accelerate protons. At what frequency in MHz must "
        f"its voltage alternate? Take {_CHARGE} and {_MASS}.",
        "In a Penning trap at a research lab, a single proton circles in a {b} T magnetic "
        f"field. At what frequency, in MHz, does it go round? Take {_CHARGE} and {_MASS}.",
        "Engineers tuning a compact medical-isotope accelerator set its magnet to {b} tesla. "
        "What is the revolution frequency of the protons inside, in MHz? Use "
        f"{_CHARGE} and {_MASS}.",
        f"How many MHz is the cyclotron frequency? The particle is a proton ({_CHARGE}, "
        f"{_MASS}) and the field is {{b}} T.",
        f"Quick one: proton, B = {{b}} T, {_CHARGE}, {_MASS}. Cyclotron frequency in MHz?",
        "A proton (charge 1.6 × 10^-19 C, mass 1.67 × 10^-27 kg) loops around in a "
        "{b}-tesla field. How many megahertz is its orbital frequency?",
    ), _cyclotron_frequency),
)
