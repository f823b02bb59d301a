"""Waves and optics: wave speed, sound, interference, refraction and thin lenses."""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import random

from quanta.calculator import format_value
from quanta_physics.families.base import Calc, Family, Topic, Worked, num

_MEDIA = (("water", 1.33), ("ice", 1.31), ("ethanol", 1.36), ("quartz", 1.46),
          ("glycerol", 1.47), ("acrylic", 1.49), ("glass", 1.5), ("crown glass", 1.52),
          ("flint glass", 1.62), ("sapphire", 1.77), ("cubic zirconia", 2.15),
          ("diamond", 2.42))


def _thin_lens(rng: random.Random) -> Worked:
    focal = rng.randint(5, 30)
    obj = focal + rng.randint(3, 40)
    image = Calc(f"1/(1/{focal} - 1/{obj})")
    return Worked({"f": focal, "obj": obj},
                  ("Use the thin-lens equation 1/f = 1/do + 1/di, so di = 1/(1/f − 1/do).",
                   f"di = {image} cm."), image.value, "cm")


def _snell_refraction(rng: random.Random) -> Worked:
    medium, n2 = rng.choice(_MEDIA)
    incidence = rng.randint(10, 80)
    angle = Calc(f"degrees(asin(sin(radians({incidence}))/{n2}))")
    return Worked({"medium": medium, "n": num(n2), "i": incidence},
                  ("Snell's law: n1 sin θ1 = n2 sin θ2 with n1 = 1.00, so "
                   "θ2 = asin(sin θ1 / n2).", f"θ2 = {angle} degrees."), angle.value, "°")


def _wavelength_from_frequency(rng: random.Random) -> Worked:
    freq = round(rng.uniform(4.0, 7.5), 2)
    wavelength = Calc(f"3.00e8/({num(freq)}e14)*1e9")
    return Worked({"f": num(freq)},
                  ("Use λ = c/f, then multiply by 10^9 to convert metres to nanometres.",
                   f"λ = {wavelength} nm."), wavelength.value, "nm")


def _lens_magnification(rng: random.Random) -> Worked:
    obj, height = rng.randint(10, 60), round(rng.uniform(1.0, 10.0), 1)
    focal = rng.randint(3, obj - 2)
    image = Calc(f"1/(1/{focal} - 1/{obj})")
    size = Calc(f"{num(height)}*{format_value(image.value)}/{obj}")
    return Worked({"h": num(height), "obj": obj, "f": focal},
                  ("Find the image distance from 1/f = 1/do + 1/di, then the image height "
                   "from hi = ho × di/do.",
                   f"di = {image} cm.", f"hi = {size} cm."), size.value, "cm")


def _wave_speed(rng: random.Random) -> Worked:
    freq, wavelength = rng.randint(1, 20), round(rng.uniform(2.0, 40.0), 1)
    speed = Calc(f"{freq}*1000*{num(wavelength)}/100")
    return Worked({"f": freq, "lam": num(wavelength)},
                  ("Use v = fλ, with f in Hz (× 1000) and λ in m (÷ 100).",
                   f"v = {speed} m/s."), speed.value, "m/s")


def _wave_period(rng: random.Random) -> Worked:
    freq = rng.randint(20, 2000)
    period = Calc(f"1/{freq}*1000")
    return Worked({"f": freq},
                  ("Use T = 1/f, then multiply by 1000 for milliseconds.",
                   f"T = {period} ms."), period.value, "ms")


def _critical_angle(rng: random.Random) -> Worked:
    medium, n = rng.choice(_MEDIA)
    angle = Calc(f"degrees(asin(1.00/{n}))")
    return Worked({"medium": medium, "n": num(n)},
                  ("At the critical angle the refracted ray grazes the surface: "
                   "sin θc = n2/n1 with n2 = 1.00 for air.", f"θc = {angle} degrees."),
                  angle.value, "°")


def _double_slit_fringes(rng: random.Random) -> Worked:
    wavelength, gap = rng.randint(400, 700), round(rng.uniform(0.10, 0.90), 2)
    distance = round(rng.uniform(0.5, 3.0), 1)
    spacing = Calc(f"{wavelength}e-9*{num(distance)}/({num(gap)}e-3)*1000")
    return Worked({"lam": wavelength, "d": num(gap), "L": num(distance)},
                  ("Use Δy = λL/d with λ and d in metres, then multiply by 1000 for mm.",
                   f"Δy = {spacing} mm."), spacing.value, "mm")


def _grating_angle(rng: random.Random) -> Worked:
    lines, wavelength = rng.choice([100, 200, 250, 300, 400, 500, 600]), rng.randint(400, 700)
    order = rng.randint(1, 2)
    spacing = Calc(f"1/({lines}*1000)")
    angle = Calc(f"degrees(asin({order}*{wavelength}e-9/{format_value(spacing.value)}))")
    return Worked({"N": lines, "lam": wavelength, "m": order,
                   "order": ("first", "second")[order - 1]},
                  ("The slit spacing is d = 1/N with N in lines per metre; then "
                   "d sin θ = mλ.", f"d = {spacing} m.", f"θ = {angle} degrees."),
                  angle.value, "°")


def _doppler_approaching(rng: random.Random) -> Worked:
    freq, source_speed = rng.randint(200, 1200), rng.randint(10, 60)
    heard = Calc(f"{freq}*343/(343 - {source_speed})")
    return Worked({"f": freq, "vs": source_speed},
                  ("For a source moving towards a stationary listener, f' = f v/(v − vs) "
                   "with v = 343 m/s.", f"f' = {heard} Hz."), heard.value, "Hz")


def _light_speed_in_medium(rng: random.Random) -> Worked:
    medium, n = rng.choice(_MEDIA)
    speed = Calc(f"3.00e8/{n}")
    return Worked({"medium": medium, "n": num(n)},
                  ("Use v = c/n.", f"v = {speed} m/s."), speed.value, "m/s")


def _string_fundamental(rng: random.Random) -> Worked:
    length, tension = rng.randint(40, 120), rng.randint(20, 200)
    density = round(rng.uniform(0.5, 8.0), 1)
    freq = Calc(f"1/(2*{length}/100)*sqrt({tension}/({num(density)}/1000))")
    return Worked({"L": length, "T": tension, "mu": num(density)},
                  ("The fundamental is f1 = (1/2L) √(T/μ), with L in m and μ in kg/m.",
                   f"f1 = {freq} Hz."), freq.value, "Hz")


def _closed_pipe(rng: random.Random) -> Worked:
    length = rng.randint(20, 150)
    freq = Calc(f"343/(4*{length}/100)")
    return Worked({"L": length},
                  ("A pipe closed at one end has a quarter wavelength in its length at the "
                   "fundamental: f1 = v/(4L), with L in m.", f"f1 = {freq} Hz."),
                  freq.value, "Hz")


FAMILIES: tuple[Family, ...] = (
    Family("thin_lens", Topic.WAVES_OPTICS, (
        "An object is {obj} cm in front of a converging lens of focal length {f} cm. How far "
        "from the lens is the image?",
        "A converging lens with a focal length of {f} cm forms an image of an object placed "
        "{obj} cm away. Find the image distance.",
        "Where does a thin convex lens (f = {f} cm) form the image of a candle standing "
        "{obj} cm from it? Give the distance from the lens in cm.",
        "A student clamps a convex lens with a focal length of {f} cm on an optical bench and "
        "places a small lit bulb {obj} cm from it. How far beyond the lens does the sharp image "
        "of the bulb form, in cm?",
        "A photographer's camera lens has a focal length of {f} cm, and a flower sits {obj} cm "
        "in front of it. How far behind the lens must the sensor be for a focused image, in "
        "centimetres?",
        "How far from a converging lens is the image? The focal length is {f} cm and the object "
        "is {obj} cm away.",
        "Quick one: convex lens, f = {f} cm, object at {obj} cm. Image distance in cm?",
        "A projector lens has a focal length of {f} cm and the slide sits {obj} cm behind "
        "it. How far from the lens must the screen be for a sharp picture?",
    ), _thin_lens),
    Family("snell_refraction", Topic.WAVES_OPTICS, (
        "Light passes from air (n = 1.00) into {medium} (n = {n}) at {i}° to the normal. "
        "What is the angle of refraction?",
        "A ray in air strikes a surface of {medium}, refractive index {n}, with an angle of "
        "incidence of {i}°. Find the angle between the refracted ray and the normal.",
        "Using Snell's law, find the refraction angle for light entering {medium} (n = {n}) "
        "from air (n = 1.00) at an incidence angle of {i}°.",
        "Sunlight through a window hits the flat, polished surface of a sample of {medium} at "
        "{i}° from the normal. With n = 1.00 for air and n = {n} for {medium}, at what angle to "
        "the normal does the light travel once inside?",
        "A physics student aims a narrow torch beam through the air (n = 1.00) onto a smooth "
        "surface of {medium}, refractive index {n}, striking it at {i}° to the normal. What "
        "refraction angle should she read off her protractor?",
        "What is the angle of refraction in {medium}? Light arrives from air (n = 1.00) at {i}° "
        "to the normal, and {medium} has n = {n}.",
        "Quick one: air (n = 1.00) into {medium} (n = {n}), incidence {i}°. Refraction angle?",
        "A laser beam in air meets a flat block of {medium} and makes {i}° with the normal "
        "there. Taking n = 1.00 for air and n = {n} for the block, what angle does the beam "
        "inside the block make with the normal?",
    ), _snell_refraction),
    Family("wavelength_from_frequency", Topic.WAVES_OPTICS, (
        "Light has a frequency of {f} × 10^14 Hz. What is its wavelength in nanometres? Use "
        "c = 3.00 × 10^8 m/s.",
        "Find the wavelength, in nm, of electromagnetic radiation whose frequency is "
        "{f} × 10^14 Hz (c = 3.00 × 10^8 m/s).",
        "A light source emits at {f} × 10^14 Hz. Taking c = 3.00 × 10^8 m/s, what "
        "wavelength is that in nanometres?",
        "Visible light oscillates {f} × 10^14 times each second. With c = 3.00 × 10^8 m/s, "
        "how long is one wave, in nm?",
    ), _wavelength_from_frequency),
    Family("lens_magnification", Topic.WAVES_OPTICS, (
        "An object {h} cm tall stands {obj} cm from a converging lens of focal length {f} cm. "
        "How tall is the image?",
        "An object {h} cm high is placed {obj} cm in front of a convex lens with a focal "
        "length of {f} cm. Find the height of the image.",
        "A converging lens (f = {f} cm) images an object of height {h} cm that is {obj} cm "
        "away. What is the size of the image in cm?",
        "On an optical bench, a glowing arrow-shaped LED {h} cm tall is mounted {obj} cm in "
        "front of a converging lens with a focal length of {f} cm. How tall is its real image, "
        "in centimetres?",
        "A lit candle flame {h} cm high burns {obj} cm from a convex lens (f = {f} cm) in a "
        "darkened classroom. What is the height of the flame's image, in cm?",
        "How tall is the image? A converging lens of focal length {f} cm views an object of "
        "height {h} cm placed {obj} cm from it.",
        "Quick one: convex lens, f = {f} cm; object {h} cm high at {obj} cm. Image height in cm?",
        "A toy {h} cm high sits {obj} cm from a magnifying lens whose focal length is {f} cm, "
        "and the real image is caught on a card. How tall is the toy in the image?",
    ), _lens_magnification),
    Family("wave_speed_khz_cm", Topic.WAVES_OPTICS, (
        "A wave has a frequency of {f} kHz and a wavelength of {lam} cm. What is its speed "
        "in m/s?",
        "Find the speed of a wave whose wavelength is {lam} cm when its frequency is "
        "{f} kHz.",
        "A vibrating source at {f} kHz produces waves {lam} cm long. How fast do the waves "
        "travel, in metres per second?",
        "An engineer drives a transducer at {f} kHz into a sample of a new material and "
        "measures a wavelength of {lam} cm inside it. How fast do the waves travel through the "
        "sample, in m/s?",
        "In a lab, a signal generator shakes one end of a long stretched rubber cord at "
        "{f} kilohertz, and a student measures the waves to be {lam} centimetres long. What is "
        "the wave speed along the cord, in metres per second?",
        "What is the wave speed, in m/s, when the frequency is {f} kHz and the wavelength is "
        "{lam} cm?",
        "Quick one: f = {f} kHz, λ = {lam} cm. Speed in m/s?",
        "Crests {lam} cm apart pass a sensor at a rate of {f} kHz. What is the wave speed "
        "in m/s?",
    ), _wave_speed),
    Family("wave_period_ms", Topic.WAVES_OPTICS, (
        "A sound wave has a frequency of {f} Hz. What is its period in milliseconds?",
        "Find the period, in ms, of an oscillation with frequency {f} Hz.",
        "A tuning fork vibrates at {f} Hz. How many milliseconds does one vibration take?",
        "A synthesizer plays a steady note of {f} Hz. How many milliseconds does each vibration "
        "of the sound last?",
        "A lab signal generator is set to {f} Hz and its output is shown on an oscilloscope. "
        "How long, in ms, does one full cycle take on the trace?",
        "What is the period in milliseconds of a wave whose frequency is {f} Hz?",
        "Quick one: {f} hertz. Period in ms?",
        "A loudspeaker cone moves back and forth {f} times per second. How long is one "
        "complete cycle, in ms?",
    ), _wave_period),
    Family("critical_angle", Topic.WAVES_OPTICS, (
        "What is the critical angle for light going from {medium} (n = {n}) into air "
        "(n = 1.00)?",
        "Find the critical angle at the boundary between {medium} and air, taking n = {n} "
        "for {medium} and n = 1.00 for air.",
        "Light travels inside {medium}, refractive index {n}, towards its surface with air "
        "(n = 1.00). Above what angle of incidence is it totally internally reflected?",
        "In a lab, a student sends a ray through the curved side of a semicircular sample of "
        "{medium} (n = {n}) so that it meets the flat side, with air (n = 1.00) beyond. At what "
        "angle of incidence on the flat side does the refracted ray just graze the surface?",
        "A fibre-optic designer needs the critical angle for a core made of {medium}, "
        "refractive index {n}, surrounded by air (n = 1.00). What angle should she use?",
        "What angle of incidence marks the onset of total internal reflection? The light is in "
        "{medium} (n = {n}) heading for air (n = 1.00).",
        "Quick one: {medium} (n = {n}) to air (n = 1.00). Critical angle in degrees?",
        "A ray trapped in {medium} (n = {n}) just fails to escape into the air "
        "(n = 1.00) outside. At what angle to the normal does it meet the surface?",
    ), _critical_angle),
    Family("double_slit_fringe_spacing", Topic.WAVES_OPTICS, (
        "Light of wavelength {lam} nm passes through two slits {d} mm apart onto a screen "
        "{L} m away. What is the fringe spacing in mm?",
        "In a Young's double-slit experiment the slit separation is {d} mm, the screen is "
        "{L} m from the slits and the wavelength is {lam} nm. Find the distance between "
        "adjacent bright fringes in mm.",
        "Two slits separated by {d} mm are lit with {lam} nm light. How far apart, in mm, "
        "are neighbouring bright fringes on a screen {L} m away?",
        "A {lam} nm laser shines on a double slit with {d} mm between the slits, and the "
        "pattern falls on a wall {L} m beyond. What is the gap between successive bright "
        "bands, in millimetres?",
    ), _double_slit_fringes),
    Family("grating_angle", Topic.WAVES_OPTICS, (
        "Light of wavelength {lam} nm falls normally on a diffraction grating with {N} lines "
        "per mm. At what angle is the {order}-order maximum?",
        "A grating has {N} lines per millimetre. Find the angle of the order-{m} bright line "
        "for {lam} nm light at normal incidence.",
        "Monochromatic {lam} nm light passes through a grating ruled with {N} lines/mm. "
        "What angle does the {order}-order beam make with the straight-through direction?",
        "In the school lab, a {lam} nm laser pointer beam hits a grating labelled \"{N} lines "
        "per mm\" at right angles. At what angle from the central spot does the {order}-order "
        "bright spot appear?",
        "A technician checks a grating with {N} lines per millimetre by shining light of "
        "wavelength {lam} nanometres perpendicularly onto it. What angle, in degrees, should "
        "she measure for the {order}-order maximum?",
        "At what angle does the order-{m} maximum appear? The grating has {N} lines per mm and "
        "the light, arriving at normal incidence, has a wavelength of {lam} nm.",
        "Quick one: {N} lines/mm grating, λ = {lam} nm, normal incidence, m = {m}. Diffraction "
        "angle?",
        "A spectrometer grating with {N} lines in every millimetre diffracts {lam} nm light "
        "arriving head-on. How far from the central beam, in degrees, is the maximum of "
        "order {m}?",
    ), _grating_angle),
    Family("doppler_approaching_source", Topic.WAVES_OPTICS, (
        "A siren emitting {f} Hz moves towards a stationary listener at {vs} m/s. What "
        "frequency does the listener hear? Take the speed of sound as 343 m/s.",
        "A source of {f} Hz sound approaches a stationary observer at {vs} m/s. Find the "
        "observed frequency (speed of sound 343 m/s).",
        "With sound travelling at 343 m/s, what frequency reaches a person standing still "
        "as a horn sounding {f} Hz comes towards them at {vs} m/s?",
        "A race car's engine hums at {f} Hz as it speeds at {vs} m/s towards a spectator "
        "standing by the track. Taking the speed of sound as 343 m/s, what frequency does the "
        "spectator hear?",
        "A drone carrying a buzzer that emits {f} Hz flies straight at a stationary microphone "
        "at {vs} metres per second. With sound travelling at 343 metres per second, what "
        "frequency does the microphone pick up?",
        "What frequency does a stationary listener hear? The source emits {f} Hz and moves "
        "towards her at {vs} m/s; sound travels at 343 m/s.",
        "Quick one: {f} Hz source approaching at {vs} m/s, listener at rest, sound at 343 m/s. "
        "Heard frequency in Hz?",
        "A train whistle sounds at {f} Hz while the train rushes at {vs} m/s towards a "
        "signalman on the platform. If sound moves at 343 m/s, what pitch in Hz does he "
        "hear?",
    ), _doppler_approaching),
    Family("light_speed_in_medium", Topic.WAVES_OPTICS, (
        "What is the speed of light in {medium}, whose refractive index is {n}? Use "
        "c = 3.00 × 10^8 m/s.",
        "Light enters {medium} (n = {n}). How fast does it travel there? Take "
        "c = 3.00 × 10^8 m/s.",
        "Find the speed of light, in m/s, inside {medium} of refractive index {n} "
        "(c = 3.00 × 10^8 m/s).",
        "A researcher times a light pulse crossing a thin layer of {medium} with refractive "
        "index {n}. Taking c = 3.00 × 10^8 m/s, what speed should she find for the pulse?",
        "An optician explains that light slows down inside {medium} because its refractive "
        "index is {n}. With c = 3.00 × 10⁸ m/s in vacuum, how fast does the light go inside?",
        "How fast does light travel in {medium}? Its refractive index is {n}, and "
        "c = 3.00 × 10^8 m/s.",
        "Quick one: {medium}, n = {n}, c = 3.00 × 10⁸ m/s. Speed of light in it, in m/s?",
        "A block of {medium} has a refractive index of {n}. Given c = 3.00 × 10^8 m/s in "
        "vacuum, how fast does light move through the block?",
    ), _light_speed_in_medium),
    Family("string_fundamental_frequency", Topic.WAVES_OPTICS, (
        "A string {L} cm long is under a tension of {T} N and has a linear density of "
        "{mu} g/m. What is its fundamental frequency?",
        "Find the lowest frequency of a string of length {L} cm fixed at both ends, with "
        "tension {T} N and mass per unit length {mu} g/m.",
        "A wire of mass per unit length {mu} g/m is stretched between supports {L} cm apart "
        "with a tension of {T} N. At what frequency does it vibrate in its fundamental mode?",
        "A piano tuner tightens a wire to a tension of {T} N; its vibrating length is {L} cm "
        "and it has {mu} grams per metre of length. What is its fundamental frequency, in Hz?",
        "In a lab, a student stretches a cord from a vibrator over a pulley {L} cm away and "
        "hangs weights that give a tension of {T} newtons. The cord has a linear density of "
        "{mu} g/m. At what frequency does it resonate in its fundamental mode?",
        "What is the fundamental frequency of a string fixed at both ends? Length {L} cm, "
        "tension {T} N, linear mass density {mu} g/m.",
        "Quick one: string, L = {L} cm, T = {T} N, μ = {mu} g/m. Fundamental in Hz?",
        "A guitar string weighs {mu} g per metre, is pulled to {T} N and vibrates over a "
        "length of {L} cm. What note frequency, in Hz, does it sound when plucked?",
    ), _string_fundamental),
    Family("closed_pipe_fundamental", Topic.WAVES_OPTICS, (
        "A pipe {L} cm long is closed at one end. What is its fundamental frequency? Take "
        "the speed of sound as 343 m/s.",
        "Find the lowest resonant frequency of a tube {L} cm long, open at one end and closed "
        "at the other (speed of sound 343 m/s).",
        "The air column in a pipe of length {L} cm, closed at one end, resonates at its "
        "fundamental. With sound at 343 m/s, what frequency is that?",
        "A resonance tube in the lab is partly filled with water so that the air column above "
        "the water is {L} cm long. With sound travelling at 343 m/s, what is the lowest "
        "frequency that makes the column resonate?",
        "A musician blows across the top of a bamboo pipe {L} centimetres long that is sealed "
        "at the bottom. Taking the speed of sound as 343 metres per second, what is the lowest "
        "note it produces, in Hz?",
        "What is the fundamental frequency of a tube {L} cm long that is closed at one end? Use "
        "343 m/s for the speed of sound.",
        "Quick one: closed pipe, {L} cm, sound at 343 m/s. Fundamental frequency?",
        "An organ pipe stopped at its far end measures {L} cm from mouth to stopper. If "
        "sound travels at 343 m/s, what is the lowest note it can sound, in Hz?",
    ), _closed_pipe),
)
