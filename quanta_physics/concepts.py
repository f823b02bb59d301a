"""Short conceptual physics Q&A, written for Quanta from fact tables (no third-party text).

They teach units, constants, laws and definitions beside the numeric problems;
each answer is one or two sentences so CPU training stays fast.
"""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

from dataclasses import dataclass

from quanta_physics.families.base import Topic

M, EM, TH, OP, MP = (Topic.MECHANICS, Topic.CIRCUITS, Topic.THERMODYNAMICS, Topic.WAVES_OPTICS,
                     Topic.MODERN)
# Every HELD_OUT_EVERY-th conceptual question is held out for the conceptual loss split.
HELD_OUT_EVERY = 5


@dataclass(frozen=True)
class ConceptQA:
    """One conceptual question, its short answer and its topic."""

    topic: str
    question: str
    answer: str


# (topic, quantity, unit with symbol)
SI_UNITS: tuple[tuple[str, str, str], ...] = (
    (M, "force", "the newton (N), equal to 1 kg m/s^2"),
    (M, "energy", "the joule (J), equal to 1 N m"),
    (M, "power", "the watt (W), equal to 1 J/s"),
    (M, "pressure", "the pascal (Pa), equal to 1 N/m^2"),
    (M, "momentum", "the kilogram metre per second (kg m/s)"),
    (M, "acceleration", "the metre per second squared (m/s^2)"),
    (M, "mass", "the kilogram (kg)"),
    (M, "torque", "the newton metre (N m)"),
    (M, "frequency", "the hertz (Hz), one cycle per second"),
    (EM, "electric charge", "the coulomb (C), equal to 1 A s"),
    (EM, "electric current", "the ampere (A)"),
    (EM, "electric potential difference", "the volt (V), equal to 1 J/C"),
    (EM, "electrical resistance", "the ohm (Ω), equal to 1 V/A"),
    (EM, "capacitance", "the farad (F), equal to 1 C/V"),
    (EM, "magnetic flux density", "the tesla (T)"),
    (EM, "magnetic flux", "the weber (Wb), equal to 1 T m^2"),
    (EM, "inductance", "the henry (H)"),
    (EM, "electric field strength", "the volt per metre (V/m), equivalent to N/C"),
    (TH, "thermodynamic temperature", "the kelvin (K)"),
    (TH, "amount of substance", "the mole (mol)"),
    (TH, "heat", "the joule (J), since heat is energy in transfer"),
    (TH, "specific heat capacity", "the joule per kilogram kelvin (J/(kg K))"),
    (TH, "entropy", "the joule per kelvin (J/K)"),
    (OP, "luminous intensity", "the candela (cd)"),
    (OP, "wavelength", "the metre (m); visible light is usually quoted in nanometres"),
    (OP, "lens power", "the dioptre (D), equal to 1 m^-1 (one over focal length in metres)"),
    (MP, "radioactive activity", "the becquerel (Bq), one decay per second"),
    (MP, "absorbed radiation dose", "the gray (Gy), equal to 1 J/kg"),
)

# (topic, constant, value)
CONSTANTS: tuple[tuple[str, str, str], ...] = (
    (OP, "the speed of light in vacuum", "299,792,458 m/s, about 3.00 × 10^8 m/s"),
    (MP, "the Planck constant", "about 6.626 × 10^-34 J s"),
    (EM, "the elementary charge", "about 1.602 × 10^-19 C"),
    (MP, "the mass of an electron", "about 9.11 × 10^-31 kg"),
    (MP, "the mass of a proton", "about 1.673 × 10^-27 kg"),
    (TH, "the Boltzmann constant", "about 1.381 × 10^-23 J/K"),
    (TH, "the Avogadro constant", "about 6.022 × 10^23 per mole"),
    (TH, "the molar gas constant R", "about 8.314 J/(mol K)"),
    (M, "the gravitational constant G", "about 6.674 × 10^-11 N m^2/kg^2"),
    (M, "the acceleration due to gravity at Earth's surface", "about 9.8 m/s^2"),
    (EM, "the Coulomb constant k", "about 8.99 × 10^9 N m^2/C^2"),
    (EM, "the permittivity of free space", "about 8.85 × 10^-12 F/m"),
    (TH, "absolute zero in degrees Celsius", "-273.15 °C, which is 0 K"),
    (MP, "one electronvolt in joules", "about 1.602 × 10^-19 J"),
)

# (topic, what the formula gives, formula and symbols)
FORMULAS: tuple[tuple[str, str, str], ...] = (
    (M, "kinetic energy", "KE = (1/2)mv^2, where m is mass and v is speed."),
    (M, "gravitational potential energy near Earth", "PE = mgh, where h is the height."),
    (M, "momentum", "p = mv, mass times velocity."),
    (M, "Newton's second law", "F = ma: net force equals mass times acceleration."),
    (M, "weight", "W = mg, mass times the gravitational field strength."),
    (M, "the period of a simple pendulum", "T = 2π √(L/g) for small swings."),
    (M, "centripetal acceleration", "a = v^2/r for speed v on a circle of radius r."),
    (M, "work done by a constant force", "W = Fd cos θ, with θ between force and motion."),
    (EM, "Ohm's law", "V = IR: voltage equals current times resistance."),
    (EM, "electrical power", "P = VI, which also equals I^2 R and V^2/R."),
    (EM, "Coulomb's law", "F = k q1 q2 / r^2 between two point charges."),
    (EM, "the energy stored in a capacitor", "E = (1/2)CV^2."),
    (EM, "the force on a current-carrying wire in a magnetic field", "F = BIL sin θ."),
    (EM, "the magnetic force on a moving charge", "F = qvB sin θ."),
    (TH, "the ideal gas law", "PV = nRT, with T in kelvin."),
    (TH, "the heat needed to change temperature", "Q = mcΔT, with c the specific heat."),
    (TH, "the efficiency of a Carnot engine", "η = 1 - Tc/Th, temperatures in kelvin."),
    (TH, "the first law of thermodynamics", "ΔU = Q - W: heat added minus work done by it."),
    (OP, "image formation by a thin lens", "1/f = 1/do + 1/di."),
    (OP, "Snell's law", "n1 sin θ1 = n2 sin θ2."),
    (OP, "the speed of a light wave", "c = fλ: speed equals frequency times wavelength."),
    (OP, "magnification of a lens", "m = -di/do, the ratio of image to object height."),
    (MP, "the energy of a photon", "E = hf = hc/λ."),
    (MP, "the de Broglie wavelength", "λ = h/p = h/(mv)."),
    (MP, "mass-energy equivalence", "E = mc^2."),
    (MP, "radioactive decay", "N = N0 (1/2)^(t/T), with T the half-life."),
    (MP, "the photoelectric effect", "KEmax = hf - φ, with φ the work function."),
)

# Definitions and laws, written as direct question and answer.
FACTS: tuple[tuple[str, str, str], ...] = (
    (M, "What does Newton's first law state?",
     "An object stays at rest or moves at constant velocity unless a net force acts on it."),
    (M, "What does Newton's third law state?",
     "When one body exerts a force on another, the second exerts an equal and opposite force "
     "on the first."),
    (M, "What is the difference between speed and velocity?",
     "Speed is a scalar, how fast something moves; velocity is a vector, speed with direction."),
    (M, "What is inertia?",
     "Inertia is an object's resistance to changes in its motion; it is measured by mass."),
    (M, "When is momentum conserved?",
     "Total momentum is conserved in any system with no net external force."),
    (M, "What is the difference between mass and weight?",
     "Mass is the amount of matter, in kg; weight is the gravitational force on it, in N."),
    (M, "What is an elastic collision?",
     "A collision in which both momentum and kinetic energy are conserved."),
    (M, "What is terminal velocity?",
     "The constant speed a falling object reaches when air resistance balances its weight."),
    (M, "What is the principle of conservation of energy?",
     "Energy cannot be created or destroyed, only changed from one form to another."),
    (M, "Which launch angle gives a projectile its longest range on level ground?",
     "45°, ignoring air resistance."),
    (M, "What is Hooke's law?",
     "The force of a spring is proportional to its extension: F = -kx."),
    (M, "What is impulse?",
     "Impulse is force times the time it acts, and it equals the change in momentum."),
    (EM, "What is the difference between a conductor and an insulator?",
     "A conductor lets charge flow freely; an insulator holds its charges in place."),
    (EM, "How do resistors in series combine?",
     "Their resistances add: R = R1 + R2 + ..."),
    (EM, "How do resistors in parallel combine?",
     "Their reciprocals add: 1/R = 1/R1 + 1/R2 + ..."),
    (EM, "What does Faraday's law of induction state?",
     "A changing magnetic flux through a circuit induces an emf equal to the rate of change of "
     "the flux."),
    (EM, "What does Lenz's law state?",
     "An induced current flows in the direction that opposes the change that produced it."),
    (EM, "Do like charges attract or repel?",
     "Like charges repel; opposite charges attract."),
    (EM, "What is an electric field?",
     "The force per unit charge that a small positive test charge would feel at a point."),
    (EM, "What does a transformer do?",
     "It changes the voltage of alternating current using two coils on a shared iron core."),
    (EM, "What is the direction of conventional current?",
     "From the positive terminal to the negative, opposite to the flow of electrons."),
    (EM, "Why can a transformer not work with direct current?",
     "It needs a changing magnetic flux to induce a voltage, and steady DC gives none."),
    (TH, "What does the zeroth law of thermodynamics state?",
     "If two systems are each in thermal equilibrium with a third, they are in equilibrium "
     "with each other."),
    (TH, "What does the second law of thermodynamics state?",
     "The total entropy of an isolated system never decreases; heat flows from hot to cold "
     "by itself."),
    (TH, "What is absolute zero?",
     "The lowest possible temperature, 0 K, where a system has its minimum energy."),
    (TH, "How do you convert degrees Celsius to kelvin?",
     "Add 273.15: T(K) = T(°C) + 273.15."),
    (TH, "What are the three ways heat is transferred?",
     "Conduction, convection and radiation."),
    (TH, "What is latent heat?",
     "The energy absorbed or released when a substance changes phase at constant temperature."),
    (TH, "What is specific heat capacity?",
     "The energy needed to raise the temperature of 1 kg of a substance by 1 K."),
    (TH, "What is an adiabatic process?",
     "A process in which no heat enters or leaves the system."),
    (TH, "What is an isothermal process?",
     "A process that keeps the temperature of the system constant."),
    (TH, "Why does water have a high specific heat capacity?",
     "Hydrogen bonds between its molecules absorb much energy before the molecules move faster."),
    (OP, "What is refraction?",
     "The bending of light as it passes between media where it travels at different speeds."),
    (OP, "What is total internal reflection?",
     "Complete reflection of light inside a denser medium when it meets the boundary beyond "
     "the critical angle."),
    (OP, "What is the refractive index of a medium?",
     "The speed of light in vacuum divided by its speed in the medium: n = c/v."),
    (OP, "What is the focal length of a lens?",
     "The distance from the lens to the point where parallel rays meet, or seem to diverge from."),
    (OP, "What is diffraction?",
     "The spreading of a wave as it passes through a gap or around an obstacle."),
    (OP, "What is the range of wavelengths of visible light?",
     "About 380 nm (violet) to 750 nm (red)."),
    (OP, "What kind of image does a plane mirror form?",
     "A virtual, upright image the same size as the object and as far behind the mirror."),
    (OP, "Why does a prism split white light into colours?",
     "Its refractive index depends on wavelength, so each colour bends by a different amount."),
    (OP, "What does polarisation show about light?",
     "That light is a transverse wave, since only transverse waves can be polarised."),
    (OP, "What is constructive interference?",
     "When waves meet in phase, so their amplitudes add to a larger wave."),
    (MP, "What is the photoelectric effect?",
     "The emission of electrons from a metal when light above a threshold frequency hits it."),
    (MP, "What is a half-life?",
     "The time for half of the radioactive nuclei in a sample to decay."),
    (MP, "What is an alpha particle?",
     "A helium-4 nucleus: two protons and two neutrons."),
    (MP, "What is a beta-minus particle?",
     "An electron emitted when a neutron in a nucleus turns into a proton."),
    (MP, "What is a gamma ray?",
     "A high-energy photon emitted by an excited nucleus."),
    (MP, "What does wave-particle duality mean?",
     "Light and matter show both wave and particle behaviour depending on the experiment."),
    (MP, "What does the Heisenberg uncertainty principle state?",
     "Position and momentum cannot both be known exactly: Δx Δp ≥ h/(4π)."),
    (MP, "What is nuclear fission?",
     "The splitting of a heavy nucleus into lighter ones, releasing energy."),
    (MP, "What is nuclear fusion?",
     "The joining of light nuclei into a heavier one, releasing energy, as in the Sun."),
    (MP, "What is an isotope?",
     "Atoms of the same element with the same number of protons but different neutrons."),
    (MP, "What are the two postulates of special relativity?",
     "The laws of physics are the same in all inertial frames, and light in vacuum has the "
     "same speed for every observer."),
    (MP, "What is time dilation?",
     "A moving clock runs slow relative to an observer: Δt = γΔt0."),
)


def concept_questions(split: str = "train") -> list[ConceptQA]:
    """The conceptual Q&A of one split (``train``, ``held_out`` or ``all``), in a fixed
    order: units, constants, formulas, then facts."""
    items = _all_concepts()
    if split == "all":
        return items
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be train, held_out or all, got {split!r}")
    held = split == "held_out"
    return [item for i, item in enumerate(items) if (i % HELD_OUT_EVERY == 0) == held]


def _all_concepts() -> list[ConceptQA]:
    items = [ConceptQA(str(t), f"What is the SI unit of {q}?", f"The SI unit of {q} is {u}.")
             for t, q, u in SI_UNITS]
    items += [ConceptQA(str(t), f"What is the value of {name}?",
                        f"{name[0].upper()}{name[1:]} is {value}.")
              for t, name, value in CONSTANTS]
    items += [ConceptQA(str(t), f"What formula describes {what}?", formula)
              for t, what, formula in FORMULAS]
    items += [ConceptQA(str(t), q, a) for t, q, a in FACTS]
    return items
