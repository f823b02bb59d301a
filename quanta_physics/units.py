"""Unit spellings a model might write, mapped to one canonical symbol and an SI scale.

Answers are compared in SI base units so ``0.45 m`` counts for an expected
``45 cm``; temperatures in K and °C are kept apart (an offset, not a scale).
"""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import re

# canonical symbol -> (dimension key, factor to that dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0),
    "km": ("length", 1e3),
    "cm": ("length", 1e-2),
    "mm": ("length", 1e-3),
    "μm": ("length", 1e-6),
    "nm": ("length", 1e-9),
    "pm": ("length", 1e-12),
    "s": ("time", 1.0),
    "ms": ("time", 1e-3),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "kg": ("mass", 1.0),
    "g": ("mass", 1e-3),
    "mg": ("mass", 1e-6),
    "m/s": ("velocity", 1.0),
    "km/h": ("velocity", 1 / 3.6),
    "m/s^2": ("acceleration", 1.0),
    "N": ("force", 1.0),
    "kN": ("force", 1e3),
    "mN": ("force", 1e-3),
    "J": ("energy", 1.0),
    "kJ": ("energy", 1e3),
    "MJ": ("energy", 1e6),
    "mJ": ("energy", 1e-3),
    "μJ": ("energy", 1e-6),
    "eV": ("energy", 1.602176634e-19),
    "keV": ("energy", 1.602176634e-16),
    "MeV": ("energy", 1.602176634e-13),
    "W": ("power", 1.0),
    "kW": ("power", 1e3),
    "mW": ("power", 1e-3),
    "A": ("current", 1.0),
    "mA": ("current", 1e-3),
    "V": ("voltage", 1.0),
    "kV": ("voltage", 1e3),
    "mV": ("voltage", 1e-3),
    "Ω": ("resistance", 1.0),
    "kΩ": ("resistance", 1e3),
    "C": ("charge", 1.0),
    "μC": ("charge", 1e-6),
    "F": ("capacitance", 1.0),
    "μF": ("capacitance", 1e-6),
    "T": ("field", 1.0),
    "Pa": ("pressure", 1.0),
    "kPa": ("pressure", 1e3),
    "MPa": ("pressure", 1e6),
    "atm": ("pressure", 101325.0),
    "K": ("kelvin", 1.0),
    "°C": ("celsius", 1.0),
    "Hz": ("frequency", 1.0),
    "kHz": ("frequency", 1e3),
    "MHz": ("frequency", 1e6),
    "°": ("angle", 1.0),
    "rad": ("angle", 57.29577951308232),
    "%": ("ratio", 1.0),
    "kg m/s": ("momentum", 1.0),
}

# Spellings that are not the canonical symbol. Keys are matched exactly first, then lower-cased
# (so "Joules" works, while "mJ" and "MJ" stay distinct).
_ALIASES: dict[str, str] = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "kilometer": "km", "kilometers": "km", "kilometre": "km", "kilometres": "km",
    "centimeter": "cm", "centimeters": "cm", "centimetre": "cm", "centimetres": "cm",
    "millimeter": "mm", "millimeters": "mm", "millimetre": "mm", "millimetres": "mm",
    "um": "μm", "µm": "μm", "micrometer": "μm", "micrometers": "μm", "micron": "μm",
    "nanometer": "nm", "nanometers": "nm", "nanometre": "nm", "nanometres": "nm",
    "picometer": "pm", "picometers": "pm", "picometre": "pm", "picometres": "pm",
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "millisecond": "ms", "milliseconds": "ms", "minute": "min", "minutes": "min",
    "hr": "h", "hour": "h", "hours": "h",
    "kilogram": "kg", "kilograms": "kg", "kgs": "kg",
    "gram": "g", "grams": "g", "milligram": "mg", "milligrams": "mg",
    "m s^-1": "m/s", "m s-1": "m/s", "ms^-1": "m/s", "ms-1": "m/s", "mps": "m/s",
    "meters per second": "m/s", "metres per second": "m/s", "meter per second": "m/s",
    "metre per second": "m/s", "m per s": "m/s",
    "kph": "km/h", "km/hr": "km/h", "km h^-1": "km/h", "kilometers per hour": "km/h",
    "kilometres per hour": "km/h",
    "m/s/s": "m/s^2", "m/s2": "m/s^2", "m s^-2": "m/s^2", "m s-2": "m/s^2", "ms^-2": "m/s^2",
    "meters per second squared": "m/s^2", "metres per second squared": "m/s^2",
    "newton": "N", "newtons": "N", "kilonewton": "kN", "kilonewtons": "kN",
    "joule": "J", "joules": "J", "kilojoule": "kJ", "kilojoules": "kJ",
    "megajoule": "MJ", "megajoules": "MJ", "millijoule": "mJ", "millijoules": "mJ",
    "uJ": "μJ", "µJ": "μJ", "microjoule": "μJ", "microjoules": "μJ",
    "ev": "eV", "electronvolt": "eV", "electronvolts": "eV", "electron volt": "eV",
    "electron volts": "eV", "electron-volt": "eV", "electron-volts": "eV",
    "kiloelectronvolt": "keV", "megaelectronvolt": "MeV", "mev": "MeV", "kev": "keV",
    "watt": "W", "watts": "W", "kilowatt": "kW", "kilowatts": "kW",
    "milliwatt": "mW", "milliwatts": "mW",
    "amp": "A", "amps": "A", "ampere": "A", "amperes": "A",
    "milliamp": "mA", "milliamps": "mA", "milliampere": "mA", "milliamperes": "mA",
    "volt": "V", "volts": "V", "kilovolt": "kV", "kilovolts": "kV",
    "millivolt": "mV", "millivolts": "mV",
    "ohm": "Ω", "ohms": "Ω", "Ω": "Ω", "\\omega": "Ω",
    "kohm": "kΩ", "kohms": "kΩ", "kilohm": "kΩ", "kilohms": "kΩ", "kΩ": "kΩ",
    "coulomb": "C", "coulombs": "C", "uC": "μC", "µC": "μC", "microcoulomb": "μC",
    "microcoulombs": "μC",
    "farad": "F", "farads": "F", "uF": "μF", "µF": "μF", "microfarad": "μF",
    "microfarads": "μF",
    "tesla": "T", "teslas": "T",
    "pascal": "Pa", "pascals": "Pa", "kilopascal": "kPa", "kilopascals": "kPa", "kpa": "kPa",
    "megapascal": "MPa", "megapascals": "MPa", "atmosphere": "atm", "atmospheres": "atm",
    "kelvin": "K", "kelvins": "K", "degrees kelvin": "K", "°K": "K",
    "℃": "°C", "degc": "°C", "deg c": "°C", "celsius": "°C", "degrees celsius": "°C",
    "degree celsius": "°C", "degrees c": "°C", "° c": "°C",
    "hertz": "Hz", "hz": "Hz", "khz": "kHz", "kilohertz": "kHz", "mhz": "MHz",
    "megahertz": "MHz",
    "deg": "°", "degs": "°", "degree": "°", "degrees": "°", "^\\circ": "°", "\\circ": "°",
    "radian": "rad", "radians": "rad",
    "percent": "%", "per cent": "%", "\\%": "%",
    "kg·m/s": "kg m/s", "kg*m/s": "kg m/s", "kg m s^-1": "kg m/s", "kgm/s": "kg m/s",
    "n s": "kg m/s", "N s": "kg m/s", "N·s": "kg m/s",
}

_SUPERSCRIPTS = str.maketrans({"⁻": "-", "¹": "1", "²": "2", "³": "3", "−": "-"})
_SUPER_RUN = re.compile(r"([⁻−]?[¹²³]+)")


def _clean(text: str) -> str:
    """Strip markup and punctuation around a unit and spell exponents one way (``^-1``)."""
    text = text.strip()
    text = re.sub(r"\\(?:text|mathrm|rm|mbox)\s*\{([^}]*)\}", r"\1", text)
    text = text.replace("\\,", " ").replace("\\ ", " ").replace("\\;", " ").replace("~", " ")
    text = text.replace("{", "").replace("}", "").replace("$", "").replace("**", "")
    text = _SUPER_RUN.sub(lambda m: "^" + m.group(1).translate(_SUPERSCRIPTS), text)
    text = text.replace("⋅", " ").replace("·", " ").replace("\\cdot", " ")
    text = text.replace("µ", "μ").replace("Ω", "Ω")
    text = text.strip(" \t.,;:!?)(\"'")
    return re.sub(r"\s+", " ", text)


def normalise_unit(text: str | None) -> str | None:
    """The canonical symbol for a unit spelling (``"joules"`` -> ``"J"``), or None if unknown."""
    if text is None:
        return None
    cleaned = _clean(text)
    if not cleaned:
        return None
    for candidate in (cleaned, cleaned.replace(" / ", "/")):
        if candidate in _UNITS:
            return candidate
        if candidate in _ALIASES:
            return _ALIASES[candidate]
        lowered = candidate.lower()
        if lowered in _ALIASES:
            return _ALIASES[lowered]
        if lowered.endswith("s") and lowered[:-1] in _ALIASES and len(lowered) > 3:
            return _ALIASES[lowered[:-1]]
    return None


def to_base(value: float, unit: str) -> tuple[float, str] | None:
    """``(value in the dimension's base unit, dimension)`` for a canonical unit, else None."""
    if unit not in _UNITS:
        return None
    dimension, factor = _UNITS[unit]
    return value * factor, dimension
