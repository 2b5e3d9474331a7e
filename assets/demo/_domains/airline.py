"""The airline database: airports, aircraft, scheduled flights, passengers and bookings."""

from __future__ import annotations

import math
import random
from typing import Any

from .common import random_date, unique_names

DB_ID = "airline"
SEED = 3303

SCHEMA = (
    """CREATE TABLE airport (
    airport_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    elevation_m INTEGER
)""",
    """CREATE TABLE aircraft (
    aircraft_id INTEGER PRIMARY KEY,
    registration TEXT NOT NULL,
    model TEXT NOT NULL,
    manufacturer TEXT NOT NULL,
    seats INTEGER NOT NULL,
    delivery_year INTEGER NOT NULL
)""",
    """CREATE TABLE flight (
    flight_id INTEGER PRIMARY KEY,
    flight_number TEXT NOT NULL,
    origin TEXT NOT NULL,
    destination TEXT NOT NULL,
    aircraft_id INTEGER NOT NULL,
    departure_time TEXT NOT NULL,
    duration_min INTEGER NOT NULL,
    base_fare REAL NOT NULL,
    FOREIGN KEY (origin) REFERENCES airport(airport_code),
    FOREIGN KEY (destination) REFERENCES airport(airport_code),
    FOREIGN KEY (aircraft_id) REFERENCES aircraft(aircraft_id)
)""",
    """CREATE TABLE passenger (
    passenger_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    nationality TEXT NOT NULL,
    frequent_flyer_tier TEXT
)""",
    """CREATE TABLE booking (
    booking_id INTEGER PRIMARY KEY,
    flight_id INTEGER NOT NULL,
    passenger_id INTEGER NOT NULL,
    travel_date DATE NOT NULL,
    seat_class TEXT NOT NULL,
    price REAL NOT NULL,
    FOREIGN KEY (flight_id) REFERENCES flight(flight_id),
    FOREIGN KEY (passenger_id) REFERENCES passenger(passenger_id)
)""",
)

AIRPORTS = (
    ("LIS", "Humberto Delgado Airport", "Lisbon", "Portugal", 114),
    ("OPO", "Francisco Sá Carneiro Airport", "Porto", "Portugal", 69),
    ("MAD", "Adolfo Suárez Madrid-Barajas", "Madrid", "Spain", 610),
    ("BCN", "Josep Tarradellas Barcelona-El Prat", "Barcelona", "Spain", 4),
    ("CDG", "Paris Charles de Gaulle", "Paris", "France", 119),
    ("AMS", "Amsterdam Schiphol", "Amsterdam", "Netherlands", -3),
    ("FRA", "Frankfurt Airport", "Frankfurt", "Germany", 111),
    ("MUC", "Munich Airport", "Munich", "Germany", 453),
    ("FCO", "Rome Fiumicino", "Rome", "Italy", 5),
    ("ZRH", "Zurich Airport", "Zurich", "Switzerland", 432),
    ("CPH", "Copenhagen Kastrup", "Copenhagen", "Denmark", 5),
    ("DUB", "Dublin Airport", "Dublin", "Ireland", 74),
    ("VIE", "Vienna International", "Vienna", "Austria", 183),
    ("FNC", "Cristiano Ronaldo Madeira Airport", "Funchal", "Portugal", None),
    ("ORY", "Paris Orly", "Paris", "France", 89),
)
FLEET = (
    ("A320neo", "Airbus", 180), ("A321neo", "Airbus", 220), ("A220-300", "Airbus", 140),
    ("737-800", "Boeing", 189), ("E195-E2", "Embraer", 132), ("ATR 72-600", "ATR", 70),
)
NATIONALITIES = ("Portugal", "Spain", "France", "Germany", "Italy", "Netherlands", "Ireland",
                 "United States", "Brazil", "Japan")
TIERS = (None, None, None, "Silver", "Silver", "Gold", "Platinum")
COORDINATES = {
    "LIS": (38.77, -9.13), "OPO": (41.24, -8.68), "MAD": (40.47, -3.56), "BCN": (41.30, 2.08),
    "CDG": (49.01, 2.55), "AMS": (52.31, 4.76), "FRA": (50.04, 8.56), "MUC": (48.35, 11.79),
    "FCO": (41.80, 12.25), "ZRH": (47.46, 8.55), "CPH": (55.62, 12.65), "DUB": (53.42, -6.27),
    "VIE": (48.11, 16.57), "FNC": (32.70, -16.77), "ORY": (48.72, 2.38),
}
CLASSES = (("Economy", 1.0), ("Economy", 1.0), ("Economy", 1.0), ("Premium", 1.6),
           ("Business", 2.8))


def distance_km(origin: str, destination: str) -> float:
    """Great-circle distance between two airports."""
    (lat1, lon1), (lat2, lon2) = COORDINATES[origin], COORDINATES[destination]
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    cosine = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371 * math.acos(min(1.0, cosine))


def populate(rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """All rows of every table, drawn from rng."""
    airports = list(AIRPORTS)
    aircraft = []
    for i in range(14):
        model, maker, seats = FLEET[i % len(FLEET)]
        aircraft.append((i + 1, f"CS-T{chr(65 + i // 26)}{chr(65 + i % 26)}", model, maker,
                         seats, rng.randint(2008, 2024)))
    served = [code for code, *_ in AIRPORTS if code != "FNC"]
    city = {code: row[1] for code, *row in AIRPORTS}
    flights = []
    for i in range(64):
        origin = "LIS" if i % 3 == 0 else rng.choice(served)
        destination = rng.choice([code for code in served if city[code] != city[origin]])
        duration = round(35 + distance_km(origin, destination) / 12.5)
        flights.append((i + 1, f"SQ{101 + i * 2}", origin, destination, rng.randint(1, 13),
                        f"{rng.randint(6, 22):02d}:{rng.choice((0, 15, 30, 45)):02d}",
                        duration, round(29 + duration * rng.uniform(0.5, 1.1), 0) - 0.01))
    names = unique_names(rng, 170)
    passengers = [(i + 1, name, rng.choice(NATIONALITIES), rng.choice(TIERS))
                  for i, name in enumerate(names)]
    bookings = []
    for booking_id in range(1, 541):
        flight = flights[rng.randrange(60)]  # the newest routes have no bookings yet
        seat_class, factor = rng.choice(CLASSES)
        bookings.append((booking_id, flight[0], rng.randint(1, 160),
                         random_date(rng, "2025-01-01", "2025-06-30"), seat_class,
                         round(flight[7] * factor, 2)))
    return {"airport": airports, "aircraft": aircraft, "flight": flights,
            "passenger": passengers, "booking": bookings}


FLIGHT_ORIGIN = "FROM flight AS T1 JOIN airport AS T2 ON T1.origin = T2.airport_code"
FLIGHT_DEST = "FROM flight AS T1 JOIN airport AS T2 ON T1.destination = T2.airport_code"
FLIGHT_CRAFT = "FROM flight AS T1 JOIN aircraft AS T2 ON T1.aircraft_id = T2.aircraft_id"
BOOK_PAX = "FROM booking AS T1 JOIN passenger AS T2 ON T1.passenger_id = T2.passenger_id"
BOOK_FLIGHT = "FROM booking AS T1 JOIN flight AS T2 ON T1.flight_id = T2.flight_id"

TRAIN = (
    ("How many flights are scheduled?", "SELECT count(*) FROM flight"),
    ("Which airports are in Portugal? Give their codes.",
     "SELECT airport_code FROM airport WHERE country = 'Portugal'"),
    ("How many passengers hold Gold status?",
     "SELECT count(*) FROM passenger WHERE frequent_flyer_tier = 'Gold'"),
    ("What is the longest flight duration in minutes?", "SELECT max(duration_min) FROM flight"),
    ("List the distinct aircraft manufacturers in the fleet.",
     "SELECT DISTINCT manufacturer FROM aircraft"),
    ("What is the average price paid for a booking?", "SELECT avg(price) FROM booking"),
    ("Which passengers are not in the frequent flyer programme?",
     "SELECT name FROM passenger WHERE frequent_flyer_tier IS NULL"),
    ("What are the flight numbers of flights departing before 8 in the morning?",
     "SELECT flight_number FROM flight WHERE departure_time < '08:00'"),
    ("List airport names from the highest elevation to the lowest.",
     "SELECT name FROM airport ORDER BY elevation_m DESC"),
    ("Show the registration and model of aircraft delivered after 2018.",
     "SELECT registration, model FROM aircraft WHERE delivery_year > 2018"),
    ("How many aircraft does each manufacturer supply?",
     "SELECT manufacturer, count(*) FROM aircraft GROUP BY manufacturer"),
    ("Which flight has the highest base fare? Give its flight number.",
     "SELECT flight_number FROM flight ORDER BY base_fare DESC LIMIT 1"),
    ("What are the flight numbers of flights that leave from Madrid?",
     f"SELECT T1.flight_number {FLIGHT_ORIGIN} WHERE T2.city = 'Madrid'"),
    ("How many flights leave from each origin airport? Show the airport name.",
     f"SELECT T2.name, count(*) {FLIGHT_ORIGIN} GROUP BY T1.origin"),
    ("What is the average booking price in each seat class?",
     "SELECT seat_class, avg(price) FROM booking GROUP BY seat_class"),
    ("List the flight numbers and durations of the three shortest flights.",
     "SELECT flight_number, duration_min FROM flight ORDER BY duration_min LIMIT 3"),
    ("Which flights are operated by Embraer aircraft? Give the flight numbers.",
     f"SELECT T1.flight_number {FLIGHT_CRAFT} WHERE T2.manufacturer = 'Embraer'"),
    ("How many passengers come from each country?",
     "SELECT nationality, count(*) FROM passenger GROUP BY nationality"),
    ("Which origin airports have an average flight duration above two hours? Give codes.",
     "SELECT origin FROM flight GROUP BY origin HAVING avg(duration_min) > 120"),
    ("What is the total revenue from bookings for each flight number?",
     f"SELECT T2.flight_number, sum(T1.price) {BOOK_FLIGHT} GROUP BY T1.flight_id"),
    ("Which country has the most airports?",
     "SELECT country FROM airport GROUP BY country ORDER BY count(*) DESC LIMIT 1"),
    ("Which airports have no departing flights? Give their names.",
     "SELECT name FROM airport WHERE airport_code NOT IN (SELECT origin FROM flight)"),
    ("Which flights are longer than the average flight? List flight numbers.",
     "SELECT flight_number FROM flight "
     "WHERE duration_min > (SELECT avg(duration_min) FROM flight)"),
    ("Which passengers have never made a booking? Show their name and nationality.",
     "SELECT name, nationality FROM passenger "
     "WHERE passenger_id NOT IN (SELECT passenger_id FROM booking)"),
    ("Which airport codes are both an origin of some flight and a destination of a flight "
     "longer than 150 minutes?",
     "SELECT origin FROM flight INTERSECT SELECT destination FROM flight WHERE duration_min > 150"),
    ("Which aircraft models are not used on any flight from Porto?",
     "SELECT model FROM aircraft EXCEPT "
     f"SELECT T2.model {FLIGHT_CRAFT} WHERE T1.origin = 'OPO'"),
    ("Which passengers made more than five bookings? Give their names.",
     f"SELECT T2.name {BOOK_PAX} GROUP BY T1.passenger_id HAVING count(*) > 5"),
    ("Which passenger has spent the most on bookings? Give the name and the amount.",
     f"SELECT T2.name, sum(T1.price) {BOOK_PAX} GROUP BY T1.passenger_id "
     "ORDER BY sum(T1.price) DESC LIMIT 1"),
    ("Which cities can be flown to from Lisbon or from Porto?",
     f"SELECT T2.city {FLIGHT_DEST} WHERE T1.origin = 'LIS' UNION "
     f"SELECT T2.city {FLIGHT_DEST} WHERE T1.origin = 'OPO'"),
    ("Which destination city receives the most flights?",
     f"SELECT T2.city {FLIGHT_DEST} GROUP BY T2.city ORDER BY count(*) DESC LIMIT 1"),
    ("For aircraft models used on at least three flights, show the model and the average "
     "flight duration, longest first.",
     f"SELECT T2.model, avg(T1.duration_min) {FLIGHT_CRAFT} GROUP BY T2.model "
     "HAVING count(*) >= 3 ORDER BY avg(T1.duration_min) DESC"),
    ("What are the names of Platinum passengers who flew Business class?",
     f"SELECT DISTINCT T2.name {BOOK_PAX} "
     "WHERE T2.frequent_flyer_tier = 'Platinum' AND T1.seat_class = 'Business'"),
    ("List the airports whose elevation is unknown or below 10 metres.",
     "SELECT name FROM airport WHERE elevation_m IS NULL OR elevation_m < 10"),
    ("How many different passengers booked a flight in March 2025?",
     "SELECT count(DISTINCT passenger_id) FROM booking "
     "WHERE travel_date BETWEEN '2025-03-01' AND '2025-03-31'"),
    ("Show the origin and destination of every flight operated by an ATR aircraft.",
     f"SELECT T1.origin, T1.destination {FLIGHT_CRAFT} WHERE T2.manufacturer = 'ATR'"),
    ("Which passengers have booked both Business and Economy class seats?",
     f"SELECT T2.name {BOOK_PAX} WHERE T1.seat_class = 'Business' INTERSECT "
     f"SELECT T2.name {BOOK_PAX} WHERE T1.seat_class = 'Economy'"),
    ("For flights leaving Lisbon, show each seat class with its number of bookings and "
     "average price, highest average first.",
     f"SELECT T1.seat_class, count(*), avg(T1.price) {BOOK_FLIGHT} WHERE T2.origin = 'LIS' "
     "GROUP BY T1.seat_class ORDER BY avg(T1.price) DESC"),
    ("Which flights last longer than the average flight out of Lisbon? Give flight number "
     "and duration, longest first.",
     "SELECT flight_number, duration_min FROM flight WHERE duration_min > "
     "(SELECT avg(duration_min) FROM flight WHERE origin = 'LIS') ORDER BY duration_min DESC"),
)

DEV = (
    ("How many airports are listed?", "SELECT count(*) FROM airport"),
    ("Which aircraft have more than 180 seats? Give the registrations.",
     "SELECT registration FROM aircraft WHERE seats > 180"),
    ("Which airports have no recorded elevation?",
     "SELECT name FROM airport WHERE elevation_m IS NULL"),
    ("How many bookings were made in each seat class?",
     "SELECT seat_class, count(*) FROM booking GROUP BY seat_class"),
    ("What are the flight number and departure time of the latest departure of the day?",
     "SELECT flight_number, departure_time FROM flight ORDER BY departure_time DESC LIMIT 1"),
    ("Show every flight number to Frankfurt with its duration.",
     f"SELECT T1.flight_number, T1.duration_min {FLIGHT_DEST} WHERE T2.city = 'Frankfurt'"),
    ("What is the total seat capacity of the fleet per manufacturer?",
     "SELECT manufacturer, sum(seats) FROM aircraft GROUP BY manufacturer"),
    ("Which flights have no bookings yet? Give their flight numbers.",
     "SELECT flight_number FROM flight WHERE flight_id NOT IN (SELECT flight_id FROM booking)"),
    ("Which nationalities include both Gold and Silver frequent flyers?",
     "SELECT nationality FROM passenger WHERE frequent_flyer_tier = 'Gold' INTERSECT "
     "SELECT nationality FROM passenger WHERE frequent_flyer_tier = 'Silver'"),
    ("Which origin airport has the most bookings across its flights? Give the code and count.",
     f"SELECT T2.origin, count(*) {BOOK_FLIGHT} GROUP BY T2.origin "
     "ORDER BY count(*) DESC LIMIT 1"),
    ("Which aircraft registrations are assigned to more than four flights?",
     f"SELECT T2.registration {FLIGHT_CRAFT} GROUP BY T1.aircraft_id HAVING count(*) > 4"),
    ("Which passengers paid more for a booking than the average Business class price?",
     f"SELECT DISTINCT T2.name {BOOK_PAX} WHERE T1.price > "
     "(SELECT avg(price) FROM booking WHERE seat_class = 'Business')"),
)
