"""Verifiable numeric physics problems: templates, a seeded generator and a fixed held-out split.

Every problem has one numeric answer with a unit, so a model's output can be
graded automatically (see ``quanta.domains.physics.answers``). Training sets come from
``generate_problems(n, seed)``; evaluation uses ``held_out_problems()``, drawn
from ``HELD_OUT_SEED``, which training never uses, and training skips any
question text the held-out pool contains.
"""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from quanta.domains.physics.answers import check_answer, extract_final_answer

__all__ = [
    "HELD_OUT_MAX",
    "HELD_OUT_SEED",
    "SYSTEM_PROMPT",
    "TOPICS",
    "PhysicsProblem",
    "check_answer",
    "extract_final_answer",
    "format_number",
    "generate_problems",
    "held_out_problems",
    "problem_to_chat",
]

SYSTEM_PROMPT = (
    "You are a physics tutor. Reason briefly, step by step, then finish with a line "
    '"Final answer: <value> <unit>".'
)
TOPICS: tuple[str, ...] = (
    "mechanics", "electromagnetism", "thermodynamics", "optics", "modern physics",
)
HELD_OUT_SEED = 90_210_417
HELD_OUT_MAX = 200

G = 9.8
K_E = 8.99e9
R_GAS = 8.314
H = 6.626e-34
C_LIGHT = 3.00e8
E_CHARGE = 1.602e-19
M_E = 9.11e-31


@dataclass(frozen=True)
class PhysicsProblem:
    """One problem: its question, a short worked answer ending in ``Final answer: ...``,
    and the exact value/unit a response is graded against."""

    id: str
    topic: str
    question: str
    worked_answer: str
    value: float
    unit: str


def format_number(x: float, sig: int = 3) -> str:
    """``x`` to ``sig`` significant figures: plain between 0.001 and 99999, else ``a × 10^b``."""
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    if -3 <= exponent < 5:
        digits = sig - 1 - exponent
        if digits <= 0:
            return str(int(round(x, digits)))
        text = f"{round(x, digits):.{digits}f}"
        return text.rstrip("0").rstrip(".")
    mantissa, _, power = f"{x:.{sig - 1}e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    return f"{mantissa} × 10^{int(power)}"


_f = format_number
Solved = tuple[str, list[str], float, str]


@dataclass(frozen=True)
class _Template:
    name: str
    topic: str
    make: Callable[[random.Random], Solved]


# --- mechanics -------------------------------------------------------------------------------

def _final_velocity(rng: random.Random) -> Solved:
    u, a, t = rng.randint(0, 20), round(rng.uniform(0.5, 5.0), 1), rng.randint(2, 12)
    v = u + a * t
    q = (f"A cart moving at {u} m/s accelerates uniformly at {_f(a)} m/s^2 for {t} s. "
         "What is its final speed?")
    return q, ["Use v = u + at.", f"v = {u} + {_f(a)} × {t} = {_f(v)} m/s."], v, "m/s"


def _newton_second_law(rng: random.Random) -> Solved:
    m, a = rng.randint(2, 80), round(rng.uniform(0.5, 9.5), 1)
    force = m * a
    q = f"What net force gives a {m} kg crate an acceleration of {_f(a)} m/s^2?"
    return q, ["Newton's second law: F = ma.", f"F = {m} × {_f(a)} = {_f(force)} N."], force, "N"


def _kinetic_energy(rng: random.Random) -> Solved:
    m, v = rng.choice([0.2, 0.5, 1.5, 2, 3, 5, 8, 12, 20, 70]), rng.randint(2, 30)
    energy = 0.5 * m * v**2
    q = f"A {_f(m)} kg ball moves at {v} m/s. What is its kinetic energy?"
    steps = ["KE = (1/2)mv^2.", f"KE = 0.5 × {_f(m)} × {v}^2 = {_f(energy)} J."]
    return q, steps, energy, "J"


def _projectile_range(rng: random.Random) -> Solved:
    v, angle = rng.randint(8, 40), rng.choice([15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 70])
    distance = v**2 * math.sin(math.radians(2 * angle)) / G
    q = (f"A ball is launched from level ground at {v} m/s, {angle}° above the horizontal. "
         "Ignoring air resistance (g = 9.8 m/s^2), what is its range?")
    steps = ["R = v^2 sin(2θ) / g.", f"R = {v}^2 × sin({2 * angle}°) / 9.8 = {_f(distance)} m."]
    return q, steps, distance, "m"


def _free_fall(rng: random.Random) -> Solved:
    t = round(rng.uniform(0.5, 5.0), 1)
    d = 0.5 * G * t**2
    q = f"A stone is dropped from rest. How far does it fall in {_f(t)} s? Use g = 9.8 m/s^2."
    return q, ["d = (1/2)gt^2.", f"d = 0.5 × 9.8 × {_f(t)}^2 = {_f(d)} m."], d, "m"


def _pendulum_period(rng: random.Random) -> Solved:
    length = round(rng.uniform(0.2, 3.0), 2)
    period = 2 * math.pi * math.sqrt(length / G)
    q = f"What is the period of a simple pendulum {_f(length)} m long? Use g = 9.8 m/s^2."
    steps = ["T = 2π √(L/g).", f"T = 2π × √({_f(length)} / 9.8) = {_f(period)} s."]
    return q, steps, period, "s"


def _work_done(rng: random.Random) -> Solved:
    force, d = rng.randint(5, 300), round(rng.uniform(0.5, 25.0), 1)
    work = force * d
    q = (f"A constant {force} N force pushes a box {_f(d)} m along the floor, in the direction "
         "of the force. How much work does it do?")
    return q, ["W = Fd.", f"W = {force} × {_f(d)} = {_f(work)} J."], work, "J"


# --- electromagnetism ------------------------------------------------------------------------

def _ohms_law(rng: random.Random) -> Solved:
    volts = rng.choice([1.5, 3, 4.5, 5, 6, 9, 12, 24, 48, 120, 230])
    if rng.random() < 0.5:
        ohms = rng.choice([2, 4, 5, 8, 10, 15, 22, 33, 47, 68, 100, 220, 470, 1000])
        amps = volts / ohms
        q = f"A {_f(volts)} V battery is connected across a {ohms} Ω resistor. What current flows?"
        steps = ["Ohm's law: I = V/R.", f"I = {_f(volts)} / {ohms} = {_f(amps)} A."]
        return q, steps, amps, "A"
    amps = rng.choice([0.05, 0.1, 0.2, 0.25, 0.5, 0.8, 1, 1.5, 2, 3, 4, 5])
    ohms = volts / amps
    q = f"A {_f(volts)} V supply drives {_f(amps)} A through a resistor. What is its resistance?"
    steps = ["Ohm's law: R = V/I.", f"R = {_f(volts)} / {_f(amps)} = {_f(ohms)} Ω."]
    return q, steps, ohms, "Ω"


def _coulomb_force(rng: random.Random) -> Solved:
    q1, q2, r_cm = rng.randint(1, 9), rng.randint(1, 9), rng.randint(2, 50)
    r = r_cm / 100
    force = K_E * q1 * 1e-6 * q2 * 1e-6 / r**2
    q = (f"Two point charges of {q1} μC and {q2} μC are {r_cm} cm apart. What is the force "
         "between them? Use k = 8.99 × 10^9 N m^2/C^2.")
    steps = ["F = k q1 q2 / r^2, with charges in C and r in m.",
             f"F = 8.99 × 10^9 × {q1} × 10^-6 × {q2} × 10^-6 / {_f(r)}^2 = {_f(force)} N."]
    return q, steps, force, "N"


def _capacitor_energy(rng: random.Random) -> Solved:
    cap = rng.choice([1, 2.2, 4.7, 10, 22, 47, 100, 220, 470, 1000])
    volts = rng.choice([5, 6, 9, 12, 24, 50, 100, 200])
    energy = 0.5 * cap * 1e-6 * volts**2
    q = f"A {_f(cap)} μF capacitor is charged to {volts} V. How much energy does it store?"
    steps = ["E = (1/2)CV^2, with C in farads.",
             f"E = 0.5 × {_f(cap)} × 10^-6 × {volts}^2 = {_f(energy)} J."]
    return q, steps, energy, "J"


def _electric_power(rng: random.Random) -> Solved:
    volts, amps = rng.choice([6, 12, 24, 110, 120, 230, 240]), round(rng.uniform(0.2, 12.0), 1)
    power = volts * amps
    q = f"A heater draws {_f(amps)} A from a {volts} V supply. What power does it use?"
    return q, ["P = VI.", f"P = {volts} × {_f(amps)} = {_f(power)} W."], power, "W"


def _force_on_wire(rng: random.Random) -> Solved:
    b, amps, length = round(rng.uniform(0.1, 1.5), 2), rng.randint(1, 20), round(
        rng.uniform(0.1, 2.0), 2)
    force = b * amps * length
    q = (f"A straight wire {_f(length)} m long carries {amps} A at right angles to a "
         f"{_f(b)} T magnetic field. What force acts on it?")
    steps = ["F = BIL for a wire perpendicular to the field.",
             f"F = {_f(b)} × {amps} × {_f(length)} = {_f(force)} N."]
    return q, steps, force, "N"


# --- thermodynamics --------------------------------------------------------------------------

def _ideal_gas_pressure(rng: random.Random) -> Solved:
    n, temp, litres = round(rng.uniform(0.5, 5.0), 1), rng.randint(250, 450), rng.randint(5, 50)
    pascals = n * R_GAS * temp / (litres / 1000)
    q = (f"What is the pressure of {_f(n)} mol of an ideal gas at {temp} K in a {litres} L "
         "container? Use R = 8.314 J/(mol K).")
    steps = [f"P = nRT/V, with V = {litres} L = {_f(litres / 1000)} m^3.",
             f"P = {_f(n)} × 8.314 × {temp} / {_f(litres / 1000)} = {_f(pascals)} Pa "
             f"= {_f(pascals / 1000)} kPa."]
    return q, steps, pascals / 1000, "kPa"


_SPECIFIC_HEATS = [("water", 4186), ("aluminium", 900), ("copper", 385), ("iron", 450)]


def _heat_capacity(rng: random.Random) -> Solved:
    material, c = rng.choice(_SPECIFIC_HEATS)
    m, dt = round(rng.uniform(0.1, 3.0), 1), rng.randint(5, 60)
    heat = m * c * dt / 1000
    q = (f"How much heat, in kJ, raises the temperature of {_f(m)} kg of {material} "
         f"(c = {c} J/(kg K)) by {dt} K?")
    steps = ["Q = mcΔT.", f"Q = {_f(m)} × {c} × {dt} = {_f(heat * 1000)} J = {_f(heat)} kJ."]
    return q, steps, heat, "kJ"


_EXPANSION = [("steel", 12), ("aluminium", 23), ("copper", 17), ("brass", 19)]


def _thermal_expansion(rng: random.Random) -> Solved:
    material, alpha = rng.choice(_EXPANSION)
    length, dt = rng.randint(1, 50), rng.randint(10, 80)
    growth_mm = alpha * 1e-6 * length * dt * 1000
    q = (f"A {length} m {material} rail (α = {alpha} × 10^-6 /K) warms by {dt} K. By how many "
         "millimetres does it lengthen?")
    steps = ["ΔL = αLΔT.",
             f"ΔL = {alpha} × 10^-6 × {length} × {dt} = {_f(growth_mm / 1000)} m "
             f"= {_f(growth_mm)} mm."]
    return q, steps, growth_mm, "mm"


def _carnot_efficiency(rng: random.Random) -> Solved:
    hot, cold = rng.randint(400, 900), rng.randint(270, 350)
    efficiency = (1 - cold / hot) * 100
    q = (f"What is the maximum efficiency of a heat engine working between {hot} K and "
         f"{cold} K? Give a percentage.")
    steps = ["Carnot efficiency: η = 1 - Tc/Th.",
             f"η = 1 - {cold}/{hot} = {_f(efficiency / 100)} = {_f(efficiency)} %."]
    return q, steps, efficiency, "%"


# --- optics ----------------------------------------------------------------------------------

def _thin_lens(rng: random.Random) -> Solved:
    focal = rng.randint(5, 30)
    obj = focal + rng.randint(3, 40)
    image = 1 / (1 / focal - 1 / obj)
    q = (f"An object is {obj} cm in front of a converging lens of focal length {focal} cm. "
         "How far from the lens is the image?")
    steps = [f"1/f = 1/do + 1/di, so 1/di = 1/{focal} - 1/{obj} = {_f(1 / image)} cm^-1.",
             f"di = {_f(image)} cm."]
    return q, steps, image, "cm"


_MEDIA = [("water", 1.33), ("acrylic", 1.49), ("glass", 1.5), ("flint glass", 1.62),
          ("diamond", 2.42)]


def _snell_refraction(rng: random.Random) -> Solved:
    medium, n2 = rng.choice(_MEDIA)
    incidence = rng.randint(10, 80)
    sin_r = math.sin(math.radians(incidence)) / n2
    refraction = math.degrees(math.asin(sin_r))
    q = (f"Light passes from air (n = 1.00) into {medium} (n = {n2}) at {incidence}° to the "
         "normal. What is the angle of refraction?")
    steps = ["Snell's law: n1 sin θ1 = n2 sin θ2.",
             f"sin θ2 = sin({incidence}°) / {n2} = {_f(sin_r)}, so θ2 = {_f(refraction)}°."]
    return q, steps, refraction, "°"


def _wavelength_from_frequency(rng: random.Random) -> Solved:
    freq = round(rng.uniform(4.0, 7.5), 2)
    nm = C_LIGHT / (freq * 1e14) * 1e9
    q = (f"Light has a frequency of {_f(freq)} × 10^14 Hz. What is its wavelength in "
         "nanometres? Use c = 3.00 × 10^8 m/s.")
    steps = ["λ = c/f.", f"λ = 3.00 × 10^8 / ({_f(freq)} × 10^14) = {_f(nm * 1e-9)} m "
             f"= {_f(nm)} nm."]
    return q, steps, nm, "nm"


def _lens_magnification(rng: random.Random) -> Solved:
    obj, height = rng.randint(10, 60), round(rng.uniform(1.0, 10.0), 1)
    focal = rng.randint(3, obj - 2)
    image = 1 / (1 / focal - 1 / obj)
    size = height * image / obj
    q = (f"A {_f(height)} cm tall object stands {obj} cm from a converging lens of focal "
         f"length {focal} cm. How tall is the image?")
    steps = [f"1/di = 1/{focal} - 1/{obj}, so di = {_f(image)} cm.",
             f"Image height = h × di/do = {_f(height)} × {_f(image)}/{obj} = {_f(size)} cm."]
    return q, steps, size, "cm"


# --- modern physics --------------------------------------------------------------------------

def _photon_energy(rng: random.Random) -> Solved:
    nm = rng.randint(200, 800)
    joules = H * C_LIGHT / (nm * 1e-9)
    ev = joules / E_CHARGE
    q = (f"What is the energy, in eV, of a photon of wavelength {nm} nm? Use h = 6.626 × "
         "10^-34 J s, c = 3.00 × 10^8 m/s, e = 1.602 × 10^-19 C.")
    steps = [f"E = hc/λ = 6.626 × 10^-34 × 3.00 × 10^8 / ({nm} × 10^-9) = {_f(joules)} J.",
             f"E = {_f(joules)} / 1.602 × 10^-19 = {_f(ev)} eV."]
    return q, steps, ev, "eV"


def _de_broglie(rng: random.Random) -> Solved:
    speed = round(rng.uniform(1.0, 9.0), 1)
    nm = H / (M_E * speed * 1e6) * 1e9
    q = (f"What is the de Broglie wavelength, in nm, of an electron moving at {_f(speed)} × "
         "10^6 m/s? Use h = 6.626 × 10^-34 J s, m = 9.11 × 10^-31 kg.")
    steps = [f"λ = h/(mv) = 6.626 × 10^-34 / (9.11 × 10^-31 × {_f(speed)} × 10^6).",
             f"λ = {_f(nm * 1e-9)} m = {_f(nm)} nm."]
    return q, steps, nm, "nm"


def _half_life(rng: random.Random) -> Solved:
    start, half, elapsed = rng.choice([10, 20, 40, 50, 80, 100, 160, 200]), rng.randint(
        2, 30), rng.randint(1, 60)
    left = start * 0.5 ** (elapsed / half)
    q = (f"A {start} g sample of an isotope has a half-life of {half} days. How much remains "
         f"after {elapsed} days?")
    steps = ["N = N0 (1/2)^(t/T).",
             f"N = {start} × 0.5^({elapsed}/{half}) = {start} × {_f(left / start)} "
             f"= {_f(left)} g."]
    return q, steps, left, "g"


def _mass_energy(rng: random.Random) -> Solved:
    grams = rng.randint(1, 500)
    energy = grams / 1000 * C_LIGHT**2
    q = (f"How much energy is equivalent to {grams} g of mass? Use c = 3.00 × 10^8 m/s.")
    steps = ["E = mc^2, with m in kg.",
             f"E = {_f(grams / 1000)} × (3.00 × 10^8)^2 = {_f(energy)} J."]
    return q, steps, energy, "J"


_WORK_FUNCTIONS = [("caesium", 2.1), ("sodium", 2.28), ("calcium", 2.87), ("zinc", 4.3)]


def _photoelectric(rng: random.Random) -> Solved:
    metal, phi = rng.choice(_WORK_FUNCTIONS)
    nm = rng.randint(150, 280)
    q = (f"Light of wavelength {nm} nm falls on {metal} (work function {phi} eV). What is the "
         "maximum kinetic energy of the emitted electrons, in eV? Use hc = 1240 eV nm.")
    photon = 1240 / nm
    kinetic = photon - phi
    steps = [f"Photon energy E = hc/λ = 1240/{nm} = {_f(photon)} eV.",
             f"KEmax = E - φ = {_f(photon)} - {phi} = {_f(kinetic)} eV."]
    return q, steps, kinetic, "eV"


TEMPLATES: tuple[_Template, ...] = (
    _Template("final_velocity", "mechanics", _final_velocity),
    _Template("newton_second_law", "mechanics", _newton_second_law),
    _Template("kinetic_energy", "mechanics", _kinetic_energy),
    _Template("projectile_range", "mechanics", _projectile_range),
    _Template("free_fall", "mechanics", _free_fall),
    _Template("pendulum_period", "mechanics", _pendulum_period),
    _Template("work_done", "mechanics", _work_done),
    _Template("ohms_law", "electromagnetism", _ohms_law),
    _Template("coulomb_force", "electromagnetism", _coulomb_force),
    _Template("capacitor_energy", "electromagnetism", _capacitor_energy),
    _Template("electric_power", "electromagnetism", _electric_power),
    _Template("force_on_wire", "electromagnetism", _force_on_wire),
    _Template("ideal_gas_pressure", "thermodynamics", _ideal_gas_pressure),
    _Template("heat_capacity", "thermodynamics", _heat_capacity),
    _Template("thermal_expansion", "thermodynamics", _thermal_expansion),
    _Template("carnot_efficiency", "thermodynamics", _carnot_efficiency),
    _Template("thin_lens", "optics", _thin_lens),
    _Template("snell_refraction", "optics", _snell_refraction),
    _Template("wavelength_from_frequency", "optics", _wavelength_from_frequency),
    _Template("lens_magnification", "optics", _lens_magnification),
    _Template("photon_energy", "modern physics", _photon_energy),
    _Template("de_broglie", "modern physics", _de_broglie),
    _Template("half_life", "modern physics", _half_life),
    _Template("mass_energy", "modern physics", _mass_energy),
    _Template("photoelectric", "modern physics", _photoelectric),
)


def _interleave_topics(templates: tuple[_Template, ...]) -> tuple[_Template, ...]:
    """Templates ordered topic by topic in turn, so any prefix of a split spans all topics."""
    by_topic = [[t for t in templates if t.topic == topic] for topic in TOPICS]
    order: list[_Template] = []
    for i in range(max(len(group) for group in by_topic)):
        order += [group[i] for group in by_topic if i < len(group)]
    return tuple(order)


_ORDER = _interleave_topics(TEMPLATES)


def _generate(n: int, seed: int, prefix: str, exclude: frozenset[str]) -> list[PhysicsProblem]:
    """Round-robin over the templates so every topic is covered evenly; no repeated questions."""
    rng = random.Random(seed)
    problems: list[PhysicsProblem] = []
    seen: set[str] = set(exclude)
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 50 * n + 100:
            raise RuntimeError(f"could not generate {n} distinct problems from seed {seed}")
        template = _ORDER[(attempts - 1) % len(_ORDER)]
        question, steps, value, unit = template.make(rng)
        if question in seen:
            continue
        seen.add(question)
        spaced = unit if unit == "°" else f" {unit}"
        final = f"Final answer: {_f(value)}{spaced}"
        problems.append(PhysicsProblem(
            id=f"{prefix}-{len(problems):04d}-{template.name}",
            topic=template.topic,
            question=question,
            worked_answer="\n".join([*steps, final]),
            value=value,
            unit=unit,
        ))
    return problems


@lru_cache(maxsize=1)
def _held_out_pool() -> tuple[PhysicsProblem, ...]:
    return tuple(_generate(HELD_OUT_MAX, HELD_OUT_SEED, "heldout", frozenset()))


def held_out_problems(n: int = 30) -> list[PhysicsProblem]:
    """The fixed evaluation split: the first ``n`` (at most ``HELD_OUT_MAX``) held-out problems."""
    if not 0 <= n <= HELD_OUT_MAX:
        raise ValueError(f"n must be between 0 and {HELD_OUT_MAX}, got {n}")
    return list(_held_out_pool()[:n])


def generate_problems(n: int, seed: int = 0) -> list[PhysicsProblem]:
    """``n`` distinct training problems, deterministic for ``seed``, disjoint from the held-out
    pool (``HELD_OUT_SEED`` itself is refused)."""
    if seed == HELD_OUT_SEED:
        raise ValueError("HELD_OUT_SEED is reserved for the held-out evaluation split")
    exclude = frozenset(p.question for p in _held_out_pool())
    return _generate(n, seed, f"train{seed}", exclude)


def problem_to_chat(problem: PhysicsProblem, system_prompt: str | None = SYSTEM_PROMPT
                    ) -> dict[str, Any]:
    """The problem as a chat example (system, user question, assistant worked answer)."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [
        {"role": "user", "content": problem.question},
        {"role": "assistant", "content": problem.worked_answer},
    ]
    return {"messages": messages, "topic": problem.topic}


def problem_to_rft(problem: PhysicsProblem, system_prompt: str | None = SYSTEM_PROMPT
                   ) -> dict[str, Any]:
    """The problem as an OpenAI reinforcement fine-tuning row: the prompt, plus the answer
    a ``physics_answer`` grader reads as ``{{item.answer}}``."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": problem.question})
    return {"messages": messages, "answer": f"{problem.value:.6g} {problem.unit}",
            "topic": problem.topic, "id": problem.id}
