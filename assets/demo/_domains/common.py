"""Shared pools of names and date helpers for the demo data generators."""

from __future__ import annotations

import datetime as dt
import random

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Sofia", "Mateo",
    "Amelia", "Leo", "Isla", "Oscar", "Chloe", "Hugo", "Grace", "Arjun", "Priya", "Kenji",
    "Yuki", "Fatima", "Omar", "Lena", "Jonas", "Clara", "Felix", "Nora", "Samuel", "Zoe",
    "Daniel", "Hannah", "Tomas", "Elena", "Mohammed", "Aisha", "Chen", "Mei", "Ivan", "Olga",
    "Diego", "Lucia", "Kwame", "Amara", "Finn", "Freya", "Rafael", "Ines", "Victor", "Alice",
)
FEMALE_NAMES = frozenset((
    "Olivia", "Emma", "Ava", "Mia", "Sofia", "Amelia", "Isla", "Chloe", "Grace", "Priya",
    "Yuki", "Fatima", "Lena", "Clara", "Nora", "Zoe", "Hannah", "Elena", "Aisha", "Mei",
    "Olga", "Lucia", "Amara", "Freya", "Ines", "Alice",
))
LAST_NAMES = (
    "Smith", "Garcia", "Müller", "Rossi", "Kowalski", "Nguyen", "Okafor", "Tanaka", "Silva",
    "Johansson", "Dubois", "Novak", "Patel", "Kim", "Hernandez", "Brown", "Wilson", "Larsen",
    "Costa", "Fischer", "Moreau", "Ivanova", "Haddad", "Mensah", "O'Brien", "Schmidt",
    "Petrov", "Yilmaz", "Andersen", "Romano", "Walker", "Chen", "Singh", "Lopez", "Baker",
    "Clarke", "Weber", "Jansen", "Svoboda", "Nakamura",
)
CITIES = (
    "Lisbon", "Porto", "Madrid", "Lyon", "Berlin", "Hamburg", "Vienna", "Prague", "Warsaw",
    "Dublin", "Leeds", "Oslo", "Copenhagen", "Milan", "Turin", "Ghent", "Utrecht", "Zurich",
)


def person_name(rng: random.Random) -> str:
    """A first and last name drawn from the pools."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def unique_names(rng: random.Random, count: int) -> list[str]:
    """Count distinct full names, in a deterministic order."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = person_name(rng)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def random_date(rng: random.Random, start: str, end: str) -> str:
    """An ISO date between start and end inclusive."""
    first = dt.date.fromisoformat(start)
    span = (dt.date.fromisoformat(end) - first).days
    return (first + dt.timedelta(days=rng.randint(0, span))).isoformat()


def add_days(day: str, days: int) -> str:
    """The ISO date a number of days after day."""
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()
