"""Modern physics: photons, matter waves, radioactive decay, relativity and nuclei."""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import random

from quanta.calculator import format_value
from quanta_physics.families.base import Calc, Family, Topic, Worked, num

_WORK_FUNCTIONS = (("caesium", 2.1), ("potassium", 2.3), ("sodium", 2.28), ("calcium", 2.87),
                   ("magnesium", 3.66), ("aluminium", 4.08), ("zinc", 4.3))

# (name, protons, neutrons, atomic mass in u)
_NUCLEI = (("helium-4", 2, 2, "4.002603"), ("lithium-7", 3, 4, "7.016003"),
           ("beryllium-9", 4, 5, "9.012183"), ("boron-11", 5, 6, "11.009305"),
           ("carbon-12", 6, 6, "12.000000"), ("nitrogen-14", 7, 7, "14.003074"),
           ("oxygen-16", 8, 8, "15.994915"), ("neon-20", 10, 10, "19.992440"),
           ("sodium-23", 11, 12, "22.989769"), ("magnesium-24", 12, 12, "23.985042"),
           ("aluminium-27", 13, 14, "26.981538"), ("silicon-28", 14, 14, "27.976927"),
           ("iron-56", 26, 30, "55.934936"), ("copper-63", 29, 34, "62.929598"),
           ("uranium-238", 92, 146, "238.050788"))


def _photon_energy(rng: random.Random) -> Worked:
    nm = rng.randint(200, 800)
    joules = Calc(f"6.626e-34*3.00e8/({nm}e-9)")
    ev = Calc(f"{format_value(joules.value)}/1.602e-19")
    return Worked({"lam": nm},
                  ("Use E = hc/λ with λ in metres, then divide by e for eV.",
                   f"E = {joules} J.", f"E = {ev} eV."), ev.value, "eV")


def _de_broglie(rng: random.Random) -> Worked:
    speed = round(rng.uniform(1.0, 9.0), 1)
    wavelength = Calc(f"6.626e-34/(9.11e-31*{num(speed)}e6)*1e9")
    return Worked({"v": num(speed)},
                  ("Use λ = h/(mv), then multiply by 10^9 for nanometres.",
                   f"λ = {wavelength} nm."), wavelength.value, "nm")


def _half_life(rng: random.Random) -> Worked:
    start, half = rng.choice([10, 20, 40, 50, 80, 100, 160, 200]), rng.randint(2, 30)
    elapsed = rng.randint(1, min(60, 6 * half))
    left = Calc(f"{start}*0.5**({elapsed}/{half})")
    return Worked({"m0": start, "T": half, "t": elapsed},
                  ("Use N = N0 (1/2)^(t/T).", f"N = {left} g."), left.value, "g")


def _mass_energy(rng: random.Random) -> Worked:
    grams = rng.randint(1, 500)
    energy = Calc(f"{grams}/1000*(3.00e8)**2")
    return Worked({"m": grams},
                  ("Use E = mc², with m in kg (divide grams by 1000).", f"E = {energy} J."),
                  energy.value, "J")


def _photoelectric(rng: random.Random) -> Worked:
    metal, phi = rng.choice(_WORK_FUNCTIONS)
    nm = rng.randint(150, 280)
    photon = Calc(f"1240/{nm}")
    kinetic = Calc(f"{format_value(photon.value)} - {phi}")
    return Worked({"metal": metal, "phi": num(phi), "lam": nm},
                  ("The photon energy is E = hc/λ; the fastest electrons keep KEmax = E − φ.",
                   f"E = {photon} eV.", f"KEmax = {kinetic} eV."), kinetic.value, "eV")


def _decay_time(rng: random.Random) -> Worked:
    half, percent = rng.randint(2, 90), rng.randint(1, 95)
    time = Calc(f"{half}*log(100/{percent})/log(2)")
    return Worked({"T": half, "p": percent},
                  ("N/N0 = (1/2)^(t/T), so t = T ln(N0/N)/ln 2.", f"t = {time} min."),
                  time.value, "min")


def _decay_constant_mass(rng: random.Random) -> Worked:
    start, rate = rng.randint(20, 500), round(rng.uniform(0.02, 0.5), 3)
    elapsed = rng.randint(10, 600)
    left = Calc(f"{start}*exp(-{num(rate)}*{elapsed}/60)")
    return Worked({"m0": start, "lam": num(rate), "t": elapsed},
                  ("Use m = m0 e^(−λt), with t in hours (divide minutes by 60).",
                   f"m = {left} mg."), left.value, "mg")


def _photon_momentum(rng: random.Random) -> Worked:
    nm = rng.randint(100, 1000)
    momentum = Calc(f"6.626e-34/({nm}e-9)")
    return Worked({"lam": nm},
                  ("Use p = h/λ with λ in metres.", f"p = {momentum} kg m/s."),
                  momentum.value, "kg m/s")


def _time_dilation(rng: random.Random) -> Worked:
    proper, beta = rng.randint(1, 48), round(rng.uniform(0.3, 0.99), 2)
    gamma = Calc(f"1/sqrt(1 - {num(beta)}**2)")
    earth = Calc(f"{format_value(gamma.value)}*{proper}")
    return Worked({"t0": proper, "b": num(beta)},
                  ("Moving clocks run slow: Δt = γΔt0 with γ = 1/√(1 − v²/c²).",
                   f"γ = {gamma}.", f"Δt = {earth} h."), earth.value, "h")


def _muon_distance(rng: random.Random) -> Worked:
    lifetime, beta = round(rng.uniform(1.0, 5.0), 1), round(rng.uniform(0.9, 0.999), 3)
    gamma = Calc(f"1/sqrt(1 - {num(beta)}**2)")
    distance = Calc(f"{format_value(gamma.value)}*{num(lifetime)}e-6*{num(beta)}*3.00e8")
    return Worked({"tau": num(lifetime), "b": num(beta)},
                  ("In the lab the lifetime is dilated to γτ, and the particle covers "
                   "d = v γτ, with τ in seconds.",
                   f"γ = {gamma}.", f"d = {distance} m."), distance.value, "m")


def _bohr_transition(rng: random.Random) -> Worked:
    upper = rng.randint(2, 6)
    lower = rng.randint(1, upper - 1)
    energy = Calc(f"13.6*(1/{lower}**2 - 1/{upper}**2)")
    wavelength = Calc(f"1240/{format_value(energy.value)}")
    return Worked({"nu": upper, "nl": lower},
                  ("The levels are En = −13.6/n² eV; the photon carries the difference, and "
                   "λ = hc/ΔE with hc = 1240 eV nm.",
                   f"ΔE = {energy} eV.", f"λ = {wavelength} nm."), wavelength.value, "nm")


def _compton_shift(rng: random.Random) -> Worked:
    angle = rng.randint(20, 180)
    shift = Calc(f"6.626e-34/(9.11e-31*3.00e8)*(1 - cos(radians({angle})))*1e12")
    return Worked({"theta": angle},
                  ("Use Δλ = h/(m_e c) (1 − cos θ), then multiply by 10^12 for picometres.",
                   f"Δλ = {shift} pm."), shift.value, "pm")


def _binding_energy(rng: random.Random) -> Worked:
    name, protons, neutrons, mass = rng.choice(_NUCLEI)
    defect = Calc(f"{protons}*1.007825 + {neutrons}*1.008665 - {mass}")
    energy = Calc(f"{format_value(defect.value)}*931.5")
    return Worked({"nucleus": name, "Z": protons, "N": neutrons, "M": mass},
                  ("The mass defect is Δm = Z m_H + N m_n − M; each u of it is 931.5 MeV.",
                   f"Δm = {defect} u.", f"E = {energy} MeV."), energy.value, "MeV")


def _laser_power(rng: random.Random) -> Worked:
    rate, nm = round(rng.uniform(1.0, 50.0), 1), rng.randint(400, 700)
    photon = Calc(f"6.626e-34*3.00e8/({nm}e-9)")
    power = Calc(f"{num(rate)}e15*{format_value(photon.value)}*1000")
    return Worked({"N": num(rate), "lam": nm},
                  ("Each photon carries E = hc/λ; the power is P = (photons per second) × E, "
                   "times 1000 for mW.", f"E = {photon} J.", f"P = {power} mW."),
                  power.value, "mW")


def _stopping_potential(rng: random.Random) -> Worked:
    metal, phi = rng.choice(_WORK_FUNCTIONS)
    freq = round(rng.uniform(1.2, 2.0), 2)
    photon = Calc(f"6.626e-34*{num(freq)}e15/1.602e-19")
    potential = Calc(f"{format_value(photon.value)} - {phi}")
    return Worked({"metal": metal, "phi": num(phi), "f": num(freq)},
                  ("eV0 = hf − φ: find hf in eV (divide by e), subtract φ, and the result in "
                   "eV is V0 in volts.", f"hf = {photon} eV.", f"V0 = {potential} V."),
                  potential.value, "V")


FAMILIES: tuple[Family, ...] = (
    Family("photon_energy", Topic.MODERN, (
        "What is the energy, in eV, of a photon of wavelength {lam} nm? Use "
        "h = 6.626 × 10^-34 J s, c = 3.00 × 10^8 m/s, e = 1.602 × 10^-19 C.",
        "Find the energy in electronvolts carried by one photon of {lam} nm light "
        "(h = 6.626 × 10^-34 J s, c = 3.00 × 10^8 m/s, e = 1.602 × 10^-19 C).",
        "Light of wavelength {lam} nm is made of photons. Taking h = 6.626 × 10^-34 J s, "
        "c = 3.00 × 10^8 m/s and e = 1.602 × 10^-19 C, how much energy does each have, "
        "in eV?",
        "A student tunes a monochromator on the optics bench to let through light of {lam} nm. "
        "Using h = 6.626 × 10^-34 J s, c = 3.00 × 10^8 m/s and e = 1.602 × 10^-19 C, what energy "
        "in eV does each photon leaving it carry?",
        "A botanist lights seedlings in a growth chamber with LEDs that glow at {lam} nanometres. "
        "With h = 6.626 × 10⁻³⁴ J·s, c = 3.00 × 10⁸ m/s and e = 1.602 × 10⁻¹⁹ C, how many "
        "electronvolts is a single photon from these LEDs worth?",
        "How many eV does one photon carry if its wavelength is {lam} nm? Data: "
        "h = 6.626 × 10^-34 J s, c = 3.00 × 10^8 m/s, e = 1.602 × 10^-19 C.",
        "Quick one: photon energy in eV at λ = {lam} nm? (h = 6.626 × 10⁻³⁴ J·s, "
        "c = 3.00 × 10⁸ m/s, e = 1.602 × 10⁻¹⁹ C)",
        "A lamp's line at {lam} nm is absorbed one photon at a time. With "
        "h = 6.626 × 10^-34 J s, c = 3.00 × 10^8 m/s and 1 eV = 1.602 × 10^-19 J, how many "
        "electronvolts does one absorption deliver?",
    ), _photon_energy),
    Family("de_broglie", Topic.MODERN, (
        "What is the de Broglie wavelength, in nm, of an electron moving at {v} × 10^6 m/s? "
        "Use h = 6.626 × 10^-34 J s, m = 9.11 × 10^-31 kg.",
        "An electron (m = 9.11 × 10^-31 kg) travels at {v} × 10^6 m/s. Find its de Broglie "
        "wavelength in nanometres, with h = 6.626 × 10^-34 J s.",
        "Taking h = 6.626 × 10^-34 J s and an electron mass of 9.11 × 10^-31 kg, what "
        "wavelength in nm is associated with an electron at a speed of {v} × 10^6 m/s?",
        "In an electron microscope the beam electrons reach a speed of {v} × 10^6 m/s. With "
        "h = 6.626 × 10^-34 J s and an electron mass of 9.11 × 10^-31 kg, what is their de "
        "Broglie wavelength in nm?",
        "A physics student fires an electron gun inside a vacuum chamber, and the electrons leave "
        "the gun at {v} × 10⁶ metres per second. Taking h = 6.626 × 10⁻³⁴ J·s and "
        "m = 9.11 × 10⁻³¹ kg, find the de Broglie wavelength of each electron in nanometres.",
        "Which de Broglie wavelength, in nm, belongs to an electron with a speed of "
        "{v} × 10^6 m/s? Given: h = 6.626 × 10^-34 J s, m = 9.11 × 10^-31 kg.",
        "Quick one: an electron at {v} × 10⁶ m/s, h = 6.626 × 10⁻³⁴ J·s, m = 9.11 × 10⁻³¹ kg. λ "
        "in nm?",
        "Electrons in a diffraction tube move at {v} × 10^6 m/s. Given "
        "h = 6.626 × 10^-34 J s and m = 9.11 × 10^-31 kg, how long, in nm, are their matter "
        "waves?",
    ), _de_broglie),
    Family("half_life", Topic.MODERN, (
        "A sample of {m0} g of an isotope has a half-life of {T} days. How much remains "
        "after {t} days?",
        "An isotope with a half-life of {T} days starts with a mass of {m0} g. Find the mass "
        "left undecayed {t} days later.",
        "How many grams of a radioactive sample weighing {m0} g are left after {t} days if its "
        "half-life is {T} days?",
        "A hospital receives {m0} g of a tracer that halves every {T} days. After it has "
        "sat on the shelf for {t} days, what mass of the tracer is still there?",
    ), _half_life),
    Family("mass_energy", Topic.MODERN, (
        "How much energy is equivalent to {m} g of mass? Use c = 3.00 × 10^8 m/s.",
        "Find the rest energy, in joules, of an object of mass {m} g (c = 3.00 × 10^8 m/s).",
        "If {m} g of matter were converted entirely into energy, how many joules would be "
        "released? Take c = 3.00 × 10^8 m/s.",
        "A jeweller sets a {m} g ring on her scale and wonders: if all of that mass could be "
        "turned into energy, how many joules would it be worth? Take c = 3.00 × 10^8 m/s.",
        "A science-fiction writer imagines a starship engine that annihilates {m} grams of fuel "
        "completely. With c = 3.00 × 10⁸ metres per second, how many joules would that release?",
        "How many joules is the rest energy of a pebble of mass {m} g? Use c = 3.00 × 10^8 m/s.",
        "Quick one: m = {m} g, c = 3.00 × 10⁸ m/s. E = mc² in J?",
        "Einstein's relation links mass and energy. With c = 3.00 × 10^8 m/s, what energy "
        "corresponds to a mass of {m} grams?",
    ), _mass_energy),
    Family("photoelectric", Topic.MODERN, (
        "Light of wavelength {lam} nm falls on {metal} (work function {phi} eV). What is the "
        "maximum kinetic energy of the emitted electrons, in eV? Use hc = 1240 eV nm.",
        "Ultraviolet light of {lam} nm shines on the surface of {metal}, whose work function is "
        "{phi} eV. Find the largest kinetic energy of the photoelectrons (hc = 1240 eV nm).",
        "The work function of {metal} is {phi} eV. Taking hc = 1240 eV nm, what is the "
        "maximum kinetic energy in eV of electrons ejected by {lam} nm photons?",
        "A lab student aims an ultraviolet lamp emitting {lam} nm light at a freshly cleaned "
        "{metal} foil, whose work function is {phi} eV. Using hc = 1240 eV nm, what maximum "
        "kinetic energy, in eV, can the ejected electrons have?",
        "Solar ultraviolet at {lam} nanometres strikes a satellite panel coated with {metal} "
        "(work function {phi} eV). Taking hc = 1240 eV nm, find the largest kinetic energy in "
        "electronvolts that a photoelectron from the coating can carry.",
        "What is KEmax, in eV, for photoelectrons from {metal}? The incident light has "
        "λ = {lam} nm, the work function is {phi} eV and hc = 1240 eV nm.",
        "Quick one: {metal}, φ = {phi} eV, λ = {lam} nm, hc = 1240 eV nm. Max electron KE in eV?",
        "Photons of wavelength {lam} nm knock electrons out of a plate of {metal}, which needs "
        "{phi} eV to release one. Using hc = 1240 eV nm, how much energy, in eV, do the "
        "fastest electrons leave with?",
    ), _photoelectric),
    Family("decay_time_to_fraction", Topic.MODERN, (
        "An isotope has a half-life of {T} min. How long does it take for {p}% of a sample "
        "to remain?",
        "How many minutes pass before a radioactive sample with a half-life of {T} min is "
        "reduced to {p}% of its original amount?",
        "A nuclide decays with a half-life of {T} minutes. After what time is only {p}% of "
        "the original nuclei left undecayed?",
        "A Geiger counter in a school lab clicks away beside a source whose half-life is {T} min. "
        "How many minutes pass until only {p}% of the original radioactive atoms are still "
        "present?",
        "A sealed ampoule of a radioactive gas with a half-life of {T} minutes sits in a fume "
        "cupboard. After how long, in minutes, has the gas dwindled to {p}% of what was sealed "
        "in?",
        "After how many minutes is a sample reduced to {p}% of its initial nuclei, given a "
        "half-life of {T} min?",
        "Quick one: half-life {T} min, {p}% left. Time in minutes?",
        "A short-lived isotope made in a cyclotron halves every {T} min. How long can "
        "technicians wait before just {p}% of it is left, in minutes?",
    ), _decay_time),
    Family("decay_constant_remaining_mass", Topic.MODERN, (
        "A sample of {m0} mg has a decay constant of {lam} per hour. How much remains after "
        "{t} min?",
        "A radioactive isotope with decay constant λ = {lam} h^-1 starts with a mass of "
        "{m0} mg. Find the mass remaining {t} minutes later.",
        "Starting from {m0} mg, what mass of a nuclide with decay constant {lam} h^-1 is "
        "left after {t} min, in mg?",
        "A technician seals {m0} milligrams of a radioactive salt in a lead container. The "
        "nuclide's decay constant is {lam} h⁻¹. How many milligrams of it are still there "
        "{t} minutes later?",
        "During a reactor experiment a foil is activated so that it contains {m0} mg of an "
        "unstable nuclide with λ = {lam} h^-1. If carrying it to the counter and setting up take "
        "{t} min, what mass in mg is left when counting starts?",
        "What mass, in mg, remains after {t} min of a {m0} mg sample whose decay constant is "
        "{lam} per hour?",
        "Quick one: m0 = {m0} mg, λ = {lam} h⁻¹, t = {t} min. Remaining mass in mg?",
        "An isotope decays exponentially at a rate of {lam} per hour. If a vial holds "
        "{m0} mg of it now, how many milligrams will be left after {t} minutes?",
    ), _decay_constant_mass),
    Family("photon_momentum", Topic.MODERN, (
        "What is the momentum of a photon of wavelength {lam} nm? Use h = 6.626 × 10^-34 J s.",
        "Find the momentum carried by one {lam} nm photon (h = 6.626 × 10^-34 J s).",
        "A photon has a wavelength of {lam} nm. Taking h = 6.626 × 10^-34 J s, what is its "
        "momentum in kg m/s?",
        "Each photon of {lam} nm light that hits a solar sail transfers momentum to it. "
        "With h = 6.626 × 10^-34 J s, how much momentum does one photon bring?",
    ), _photon_momentum),
    Family("time_dilation", Topic.MODERN, (
        "A spaceship travels at {b}c. Its clock records a journey of {t0} h. How long does "
        "the journey last as measured from Earth?",
        "A clock moving at {b} times the speed of light ticks off {t0} h. How much time "
        "passes for an observer at rest?",
        "An astronaut moving at a speed of {b}c measures {t0} hours on her own watch. What "
        "time interval, in hours, does mission control on Earth measure?",
        "A cargo freighter cruises to a mining colony at {b}c, and the pilot's onboard clock logs "
        "{t0} hours for the trip. How many hours does the trip take according to the colony's "
        "controllers, who are at rest?",
        "A probe flashes past a space station at {b} times the speed of light. An experiment "
        "aboard the probe lasts {t0} h by the probe's own clock. How long, in hours, does the "
        "station crew time it at?",
        "How many hours elapse on Earth while a rocket moving at {b}c records {t0} h on board?",
        "Quick one: v = {b}c, proper time {t0} h. Dilated time in hours?",
        "Twins: one stays home while the other flies at {b}c and ages {t0} h during the "
        "trip. How many hours does the stay-at-home twin age?",
    ), _time_dilation),
    Family("muon_lab_distance", Topic.MODERN, (
        "A particle with a proper lifetime of {tau} μs moves at {b}c. How far does it travel "
        "in the lab during one lifetime? Use c = 3.00 × 10^8 m/s.",
        "A muon lives {tau} μs in its own rest frame and moves at {b}c. Taking "
        "c = 3.00 × 10^8 m/s, find the distance it covers in the laboratory frame.",
        "Taking c = 3.00 × 10^8 m/s and time dilation into account, how many metres does an "
        "unstable particle travel at {b}c if its rest-frame lifetime is {tau} μs?",
        "In an accelerator, a bunch of unstable particles races down a straight beamline at {b}c; "
        "at rest each would live {tau} μs. Taking c = 3.00 × 10^8 m/s and including time "
        "dilation, how many metres down the beamline does a particle get in one lifetime?",
        "A storage-ring experiment circulates particles at {b}c whose proper lifetime is "
        "{tau} microseconds. With c = 3.00 × 10⁸ m/s, what distance in the lab frame does one "
        "cover during its dilated lifetime?",
        "What lab-frame distance, in metres, does a particle travel within one lifetime if it "
        "moves at {b}c and has a proper lifetime of {tau} μs? Use c = 3.00 × 10^8 m/s.",
        "Quick one: τ = {tau} μs (rest frame), v = {b}c, c = 3.00 × 10⁸ m/s. Lab distance in m?",
        "Cosmic-ray muons at {b}c would last only {tau} μs if they were at rest. Including "
        "relativity, with c = 3.00 × 10^8 m/s, how far through the atmosphere does one get "
        "in a lifetime?",
    ), _muon_distance),
    Family("bohr_transition_wavelength", Topic.MODERN, (
        "A hydrogen atom drops from level n = {nu} to n = {nl}. What is the wavelength of "
        "the emitted photon? Use En = −13.6/n² eV and hc = 1240 eV nm.",
        "Find the wavelength in nm of the photon emitted when a hydrogen electron falls from "
        "n = {nu} to n = {nl} (En = −13.6 eV/n², hc = 1240 eV nm).",
        "With hydrogen levels at −13.6/n² eV and hc = 1240 eV nm, what wavelength of light "
        "comes out in the n = {nu} → n = {nl} transition?",
        "An astronomer studying a glowing hydrogen nebula picks out the light from electrons "
        "dropping from n = {nu} to n = {nl}. With level energies En = −13.6/n² eV and "
        "hc = 1240 eV nm, what wavelength in nm does she record?",
        "In a hydrogen discharge lamp on a lab bench, electrons jump down from the n = {nu} level "
        "to the n = {nl} level. Using En = −13.6/n^2 eV and hc = 1240 eV nm, find the wavelength "
        "of the emitted spectral line in nanometres.",
        "What wavelength, in nm, does hydrogen emit for the n = {nu} to n = {nl} jump? Take "
        "En = −13.6/n² eV and hc = 1240 eV nm.",
        "Quick one: hydrogen, n = {nu} → {nl}, En = −13.6/n^2 eV, hc = 1240 eV nm. λ in nm?",
        "An excited hydrogen atom in its n = {nu} state relaxes to n = {nl} and gives out "
        "one photon. Taking the level energies as −13.6/n² eV and hc = 1240 eV nm, how "
        "long is the light's wavelength in nanometres?",
    ), _bohr_transition),
    Family("compton_shift", Topic.MODERN, (
        "An X-ray photon scatters off a free electron through {theta}°. What is the change "
        "in its wavelength, in pm? Use h = 6.626 × 10^-34 J s, m_e = 9.11 × 10^-31 kg, "
        "c = 3.00 × 10^8 m/s.",
        "Find the Compton shift in picometres for a photon scattered at {theta}° by an "
        "electron (h = 6.626 × 10^-34 J s, m_e = 9.11 × 10^-31 kg, c = 3.00 × 10^8 m/s).",
        "Taking h = 6.626 × 10^-34 J s, m_e = 9.11 × 10^-31 kg and c = 3.00 × 10^8 m/s, by "
        "how many pm does a photon's wavelength grow when it is Compton scattered at "
        "{theta}°?",
        "In a Compton experiment, a detector on a rotating arm picks up X-rays scattered off a "
        "graphite target at {theta}°. Treating the electrons as free, with "
        "h = 6.626 × 10^-34 J s, m_e = 9.11 × 10^-31 kg and c = 3.00 × 10^8 m/s, by how many "
        "picometres has the wavelength shifted?",
        "A medical physicist models X-ray photons from a scanner scattering off free electrons in "
        "tissue through {theta} degrees. With h = 6.626 × 10⁻³⁴ J·s, m_e = 9.11 × 10⁻³¹ kg and "
        "c = 3.00 × 10⁸ m/s, what Compton shift in pm should she expect?",
        "What is the wavelength increase, in pm, of a photon scattered by a free electron at an "
        "angle of {theta}°? Use h = 6.626 × 10^-34 J s, m_e = 9.11 × 10^-31 kg, "
        "c = 3.00 × 10^8 m/s.",
        "Quick one: Compton scattering at θ = {theta}°, h = 6.626 × 10⁻³⁴ J·s, "
        "m_e = 9.11 × 10⁻³¹ kg, c = 3.00 × 10⁸ m/s. Δλ in pm?",
        "A gamma ray bounces off a loosely bound electron and leaves at {theta}° to its "
        "original path. With h = 6.626 × 10^-34 J s, m_e = 9.11 × 10^-31 kg and "
        "c = 3.00 × 10^8 m/s, how much longer is its wavelength now, in pm?",
    ), _compton_shift),
    Family("nuclear_binding_energy", Topic.MODERN, (
        "An atom of {nucleus} has {Z} protons, {N} neutrons and an atomic mass of {M} u. What "
        "is its nuclear binding energy in MeV? Use m_H = 1.007825 u, m_n = 1.008665 u and "
        "1 u = 931.5 MeV.",
        "Find the binding energy of {nucleus} (Z = {Z}, N = {N}, atomic mass {M} u), taking "
        "the hydrogen atom mass as 1.007825 u, the neutron mass as 1.008665 u and "
        "931.5 MeV per u.",
        "With m_H = 1.007825 u, m_n = 1.008665 u and 931.5 MeV/u, how much energy in MeV "
        "holds together the {Z} protons and {N} neutrons of {nucleus}, whose atomic mass "
        "is {M} u?",
        "A nuclear physics student looks up {nucleus} in a data table: {Z} protons, {N} neutrons, "
        "atomic mass {M} u. Using m_H = 1.007825 u, m_n = 1.008665 u and 1 u = 931.5 MeV, what "
        "total binding energy in MeV should she write down?",
        "A mass-spectrometry lab measures the atomic mass of {nucleus} as {M} u; its nucleus "
        "contains {Z} protons and {N} neutrons. Taking the hydrogen-atom mass as 1.007825 u, the "
        "neutron mass as 1.008665 u and 931.5 MeV for each u of mass defect, find its binding "
        "energy in MeV.",
        "What is the binding energy, in MeV, of {nucleus}? Data: Z = {Z}, N = {N}, atomic mass "
        "{M} u, m_H = 1.007825 u, m_n = 1.008665 u, 1 u = 931.5 MeV.",
        "Quick one: {nucleus}, Z = {Z}, N = {N}, M = {M} u; m_H = 1.007825 u, m_n = 1.008665 u, "
        "931.5 MeV/u. Binding energy in MeV?",
        "To pull the nucleus of {nucleus} ({Z} protons, {N} neutrons) completely apart takes "
        "energy. Its atom weighs {M} u, a hydrogen atom 1.007825 u and a neutron "
        "1.008665 u; 1 u is 931.5 MeV. How many MeV are needed?",
    ), _binding_energy),
    Family("laser_power_from_photon_rate", Topic.MODERN, (
        "A laser emits {N} × 10^15 photons per second at {lam} nm. What is its power in mW? "
        "Use h = 6.626 × 10^-34 J s and c = 3.00 × 10^8 m/s.",
        "Find the output power, in milliwatts, of a {lam} nm laser that sends out "
        "{N} × 10^15 photons each second (h = 6.626 × 10^-34 J s, c = 3.00 × 10^8 m/s).",
        "Taking h = 6.626 × 10^-34 J s and c = 3.00 × 10^8 m/s, what power in mW is carried "
        "by a beam of {N} × 10^15 photons per second with wavelength {lam} nm?",
        "A dentist's curing light emits {N} × 10^15 photons per second at {lam} nm to harden a "
        "filling. With h = 6.626 × 10^-34 J s and c = 3.00 × 10^8 m/s, what is its light output "
        "in mW?",
        "A fibre-optic link in a lab is driven by a diode laser at {lam} nanometres that launches "
        "{N} × 10¹⁵ photons per second into the fibre. Using h = 6.626 × 10⁻³⁴ J·s and "
        "c = 3.00 × 10⁸ m/s, how many milliwatts of optical power is that?",
        "What power, in mW, does a {lam} nm beam deliver if it carries {N} × 10^15 photons each "
        "second? Use h = 6.626 × 10^-34 J s and c = 3.00 × 10^8 m/s.",
        "Quick one: {N} × 10¹⁵ photons/s at {lam} nm, h = 6.626 × 10⁻³⁴ J·s, c = 3.00 × 10⁸ m/s. "
        "Power in mW?",
        "A detector counts {N} × 10^15 photons arriving every second from a {lam} nm laser "
        "pointer. With h = 6.626 × 10^-34 J s and c = 3.00 × 10^8 m/s, how many milliwatts "
        "does the beam deliver?",
    ), _laser_power),
    Family("stopping_potential", Topic.MODERN, (
        "Light of frequency {f} × 10^15 Hz falls on {metal}, whose work function is {phi} eV. "
        "What is the stopping potential? Use h = 6.626 × 10^-34 J s, e = 1.602 × 10^-19 C.",
        "Find the stopping potential for photoelectrons ejected from {metal} (work function "
        "{phi} eV) by radiation of {f} × 10^15 Hz (h = 6.626 × 10^-34 J s, "
        "e = 1.602 × 10^-19 C).",
        "Taking h = 6.626 × 10^-34 J s and e = 1.602 × 10^-19 C, what reverse voltage just "
        "stops the electrons that {f} × 10^15 Hz light frees from {metal}, which has a "
        "work function of {phi} eV?",
        "In a photoelectric-effect demonstration, a teacher shines ultraviolet light of frequency "
        "{f} × 10^15 Hz onto a clean {metal} surface with a work function of {phi} eV. Using "
        "h = 6.626 × 10^-34 J s and e = 1.602 × 10^-19 C, what stopping potential in volts should "
        "the class measure?",
        "A researcher illuminates a {metal} sample (work function {phi} eV) in a vacuum chamber "
        "with a tunable source at {f} × 10¹⁵ hertz. With h = 6.626 × 10⁻³⁴ J·s and "
        "e = 1.602 × 10⁻¹⁹ C, how many volts are needed to halt even the most energetic emitted "
        "electrons?",
        "What stopping potential, in volts, applies to {metal} (φ = {phi} eV) lit by radiation at "
        "{f} × 10^15 Hz? Take h = 6.626 × 10^-34 J s and e = 1.602 × 10^-19 C.",
        "Quick one: {metal}, φ = {phi} eV, f = {f} × 10¹⁵ Hz, h = 6.626 × 10⁻³⁴ J·s, "
        "e = 1.602 × 10⁻¹⁹ C. Stopping potential in V?",
        "In a photocell whose cathode is made of {metal} (φ = {phi} eV), ultraviolet light at "
        "{f} × 10^15 Hz produces a current. With h = 6.626 × 10^-34 J s and "
        "e = 1.602 × 10^-19 C, what opposing voltage brings the current to zero?",
    ), _stopping_potential),
)
