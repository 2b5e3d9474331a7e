"""The clinic database: departments, doctors, patients, appointments and prescriptions."""

from __future__ import annotations

import random
from typing import Any

from .common import CITIES, FEMALE_NAMES, random_date, unique_names

DB_ID = "clinic"
SEED = 2202

SCHEMA = (
    """CREATE TABLE department (
    department_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    floor INTEGER NOT NULL,
    phone TEXT
)""",
    """CREATE TABLE doctor (
    doctor_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    specialty TEXT NOT NULL,
    department_id INTEGER NOT NULL,
    hire_year INTEGER NOT NULL,
    salary INTEGER NOT NULL,
    FOREIGN KEY (department_id) REFERENCES department(department_id)
)""",
    """CREATE TABLE patient (
    patient_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    gender TEXT NOT NULL,
    birth_date DATE NOT NULL,
    city TEXT NOT NULL,
    insurance_provider TEXT
)""",
    """CREATE TABLE appointment (
    appointment_id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    doctor_id INTEGER NOT NULL,
    appointment_date DATE NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    fee REAL,
    FOREIGN KEY (patient_id) REFERENCES patient(patient_id),
    FOREIGN KEY (doctor_id) REFERENCES doctor(doctor_id)
)""",
    """CREATE TABLE prescription (
    prescription_id INTEGER PRIMARY KEY,
    appointment_id INTEGER NOT NULL,
    medication TEXT NOT NULL,
    dosage_mg INTEGER NOT NULL,
    days INTEGER NOT NULL,
    FOREIGN KEY (appointment_id) REFERENCES appointment(appointment_id)
)""",
)

DEPARTMENTS = (
    ("Cardiology", 3, "+351 210 400 301"),
    ("Paediatrics", 1, "+351 210 400 102"),
    ("Dermatology", 2, "+351 210 400 203"),
    ("Orthopaedics", 2, "+351 210 400 204"),
    ("Neurology", 4, None),
    ("General Practice", 0, "+351 210 400 006"),
    ("Oncology", 5, "+351 210 400 507"),
)
SPECIALTIES = {
    1: ("Cardiologist", "Cardiac Surgeon"),
    2: ("Paediatrician",),
    3: ("Dermatologist",),
    4: ("Orthopaedic Surgeon", "Physiotherapist"),
    5: ("Neurologist",),
    6: ("General Practitioner",),
}
REASONS = {
    1: ("chest pain", "hypertension review", "palpitations"),
    2: ("vaccination", "fever", "growth check"),
    3: ("rash", "mole check", "acne"),
    4: ("knee pain", "back pain", "fracture follow-up"),
    5: ("migraine", "dizziness", "numbness"),
    6: ("annual check-up", "flu symptoms", "blood test results"),
}
MEDICATIONS = (
    ("Amoxicillin", 500), ("Ibuprofen", 400), ("Metformin", 850), ("Atorvastatin", 20),
    ("Lisinopril", 10), ("Omeprazole", 20), ("Salbutamol", 100), ("Sertraline", 50),
    ("Paracetamol", 1000), ("Cetirizine", 10),
)
INSURERS = ("Medis", "Multicare", "AdvanceCare", "Allianz Care")


def populate(rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """All rows of every table, drawn from rng."""
    departments = [(i + 1, *row) for i, row in enumerate(DEPARTMENTS)]
    names = unique_names(rng, 26 + 160)
    doctors = []
    for i in range(26):
        dept = i % 6 + 1 if i < 12 else rng.randint(1, 6)  # Oncology has no doctors yet
        doctors.append((i + 1, "Dr. " + names[i], rng.choice(SPECIALTIES[dept]), dept,
                        rng.randint(1996, 2024), rng.randrange(62000, 185000, 500)))
    patients = []
    for i in range(160):
        insurer = None if rng.random() < 0.25 else rng.choice(INSURERS)
        gender = "F" if names[26 + i].split()[0] in FEMALE_NAMES else "M"
        patients.append((i + 1, names[26 + i], gender,
                         random_date(rng, "1938-01-01", "2021-12-31"),
                         rng.choice(CITIES[:9]), insurer))
    appointments: list[tuple[Any, ...]] = []
    prescriptions: list[tuple[Any, ...]] = []
    for appointment_id in range(1, 421):
        doctor = doctors[rng.randrange(26)]
        status = rng.choice(("completed", "completed", "completed", "completed",
                             "cancelled", "no-show"))
        fee = None if status == "cancelled" else float(rng.randrange(40, 260, 5))
        appointments.append((appointment_id, rng.randint(1, 148), doctor[0],
                             random_date(rng, "2024-01-02", "2024-12-20"),
                             rng.choice(REASONS[doctor[3]]), status, fee))
        if status == "completed" and rng.random() < 0.6:
            for medication, dose in rng.sample(MEDICATIONS, rng.randint(1, 2)):
                prescriptions.append((len(prescriptions) + 1, appointment_id, medication,
                                      dose * rng.choice((1, 1, 2)), rng.choice((5, 7, 10, 14, 30))))
    return {"department": departments, "doctor": doctors, "patient": patients,
            "appointment": appointments, "prescription": prescriptions}


DOC_DEPT = "FROM doctor AS T1 JOIN department AS T2 ON T1.department_id = T2.department_id"
APPT_DOC = "FROM appointment AS T1 JOIN doctor AS T2 ON T1.doctor_id = T2.doctor_id"
APPT_PAT = "FROM appointment AS T1 JOIN patient AS T2 ON T1.patient_id = T2.patient_id"
RX_APPT = "FROM prescription AS T1 JOIN appointment AS T2 ON T1.appointment_id = T2.appointment_id"

TRAIN = (
    ("How many doctors work at the clinic?", "SELECT count(*) FROM doctor"),
    ("What are the names of patients from Vienna?",
     "SELECT name FROM patient WHERE city = 'Vienna'"),
    ("How many appointments were cancelled?",
     "SELECT count(*) FROM appointment WHERE status = 'cancelled'"),
    ("What is the highest salary paid to a doctor?", "SELECT max(salary) FROM doctor"),
    ("Which departments have no phone number listed?",
     "SELECT name FROM department WHERE phone IS NULL"),
    ("List the distinct medications that have been prescribed.",
     "SELECT DISTINCT medication FROM prescription"),
    ("How many patients have no insurance provider?",
     "SELECT count(*) FROM patient WHERE insurance_provider IS NULL"),
    ("What is the average fee of an appointment, ignoring appointments without a fee?",
     "SELECT avg(fee) FROM appointment WHERE fee IS NOT NULL"),
    ("List the names of doctors hired after 2018.",
     "SELECT name FROM doctor WHERE hire_year > 2018"),
    ("Show the name and salary of every cardiologist.",
     "SELECT name, salary FROM doctor WHERE specialty = 'Cardiologist'"),
    ("How many patients are there of each gender?",
     "SELECT gender, count(*) FROM patient GROUP BY gender"),
    ("Which doctor was hired most recently?",
     "SELECT name FROM doctor ORDER BY hire_year DESC LIMIT 1"),
    ("What are the names of the doctors in the Neurology department?",
     f"SELECT T1.name {DOC_DEPT} WHERE T2.name = 'Neurology'"),
    ("For each department, how many doctors work there? Show the department name.",
     f"SELECT T2.name, count(*) {DOC_DEPT} GROUP BY T1.department_id"),
    ("What is the average doctor salary per specialty?",
     "SELECT specialty, avg(salary) FROM doctor GROUP BY specialty"),
    ("On which dates did patients from Madrid have appointments?",
     f"SELECT T1.appointment_date {APPT_PAT} WHERE T2.city = 'Madrid'"),
    ("How many appointments had each reason?",
     "SELECT reason, count(*) FROM appointment GROUP BY reason"),
    ("List the three highest-paid doctors with their salaries.",
     "SELECT name, salary FROM doctor ORDER BY salary DESC LIMIT 3"),
    ("Which medications were prescribed for more than 14 days at least once?",
     "SELECT DISTINCT medication FROM prescription WHERE days > 14"),
    ("What is the total fee collected by each doctor? Show doctor name and total.",
     f"SELECT T2.name, sum(T1.fee) {APPT_DOC} GROUP BY T1.doctor_id"),
    ("Which medication has been prescribed most often?",
     "SELECT medication FROM prescription GROUP BY medication ORDER BY count(*) DESC LIMIT 1"),
    ("Which departments have no doctors?",
     "SELECT name FROM department WHERE department_id NOT IN (SELECT department_id FROM doctor)"),
    ("Which doctors earn more than the average doctor salary?",
     "SELECT name FROM doctor WHERE salary > (SELECT avg(salary) FROM doctor)"),
    ("Which patients have never booked an appointment? Show name and city.",
     "SELECT name, city FROM patient "
     "WHERE patient_id NOT IN (SELECT patient_id FROM appointment)"),
    ("Which cities have both patients insured by Medis and patients insured by Multicare?",
     "SELECT city FROM patient WHERE insurance_provider = 'Medis' INTERSECT "
     "SELECT city FROM patient WHERE insurance_provider = 'Multicare'"),
    ("Which specialties have no doctor hired before 2005?",
     "SELECT specialty FROM doctor EXCEPT SELECT specialty FROM doctor WHERE hire_year < 2005"),
    ("Which doctors had more than 12 completed appointments?",
     f"SELECT T2.name {APPT_DOC} WHERE T1.status = 'completed' "
     "GROUP BY T1.doctor_id HAVING count(*) > 12"),
    ("Which department's doctors have the highest average salary?",
     f"SELECT T2.name {DOC_DEPT} GROUP BY T1.department_id ORDER BY avg(T1.salary) DESC LIMIT 1"),
    ("Which patients were prescribed Ibuprofen? List their names without duplicates.",
     "SELECT DISTINCT T3.name FROM prescription AS T1 JOIN appointment AS T2 "
     "ON T1.appointment_id = T2.appointment_id JOIN patient AS T3 "
     "ON T2.patient_id = T3.patient_id WHERE T1.medication = 'Ibuprofen'"),
    ("Which doctors saw a patient for migraine or for back pain?",
     f"SELECT T2.name {APPT_DOC} WHERE T1.reason = 'migraine' UNION "
     f"SELECT T2.name {APPT_DOC} WHERE T1.reason = 'back pain'"),
    ("For each department with at least three doctors, show its name and the total salary "
     "bill, largest first.",
     f"SELECT T2.name, sum(T1.salary) {DOC_DEPT} GROUP BY T1.department_id "
     "HAVING count(*) >= 3 ORDER BY sum(T1.salary) DESC"),
    ("What are the names and birth dates of the five oldest patients?",
     "SELECT name, birth_date FROM patient ORDER BY birth_date LIMIT 5"),
    ("How many appointments did each patient from Prague have? Show the name and the count, "
     "most first.",
     f"SELECT T2.name, count(*) {APPT_PAT} WHERE T2.city = 'Prague' "
     "GROUP BY T1.patient_id ORDER BY count(*) DESC"),
    ("Which insurance providers cover patients who missed an appointment (no-show)?",
     f"SELECT DISTINCT T2.insurance_provider {APPT_PAT} "
     "WHERE T1.status = 'no-show' AND T2.insurance_provider IS NOT NULL"),
    ("How many appointments are there for each status, counting only those with a fee?",
     "SELECT status, count(fee) FROM appointment GROUP BY status"),
    ("Which patients born before 1960 have seen a cardiologist? Give names and cities, "
     "sorted by name.",
     "SELECT DISTINCT T3.name, T3.city FROM appointment AS T1 JOIN doctor AS T2 "
     "ON T1.doctor_id = T2.doctor_id JOIN patient AS T3 ON T1.patient_id = T3.patient_id "
     "WHERE T2.specialty = 'Cardiologist' AND T3.birth_date < '1960-01-01' ORDER BY T3.name"),
    ("Which Cardiology doctors earn more than the average doctor?",
     f"SELECT T1.name {DOC_DEPT} WHERE T2.name = 'Cardiology' "
     "AND T1.salary > (SELECT avg(salary) FROM doctor)"),
    ("Which patients insured by Medis have never missed an appointment? Give name and city.",
     "SELECT name, city FROM patient WHERE insurance_provider = 'Medis' EXCEPT "
     f"SELECT T2.name, T2.city {APPT_PAT} WHERE T1.status = 'no-show'"),
)

DEV = (
    ("How many patients are registered?", "SELECT count(*) FROM patient"),
    ("Which doctors earn less than 80000?", "SELECT name FROM doctor WHERE salary < 80000"),
    ("How many appointments had no fee charged?",
     "SELECT count(*) FROM appointment WHERE fee IS NULL"),
    ("How many doctors are there with each specialty?",
     "SELECT specialty, count(*) FROM doctor GROUP BY specialty"),
    ("Show the name and floor of every department, from the lowest floor up.",
     "SELECT name, floor FROM department ORDER BY floor"),
    ("Which patients saw a dermatologist? List their names once each.",
     "SELECT DISTINCT T3.name FROM appointment AS T1 JOIN doctor AS T2 "
     "ON T1.doctor_id = T2.doctor_id JOIN patient AS T3 ON T1.patient_id = T3.patient_id "
     "WHERE T2.specialty = 'Dermatologist'"),
    ("What is the total number of prescription days for each medication?",
     "SELECT medication, sum(days) FROM prescription GROUP BY medication"),
    ("Which doctors have had no appointments in December?",
     "SELECT name FROM doctor EXCEPT "
     f"SELECT T2.name {APPT_DOC} WHERE T1.appointment_date >= '2024-12-01'"),
    ("Which patients are younger than every patient from Prague?",
     "SELECT name FROM patient "
     "WHERE birth_date > (SELECT max(birth_date) FROM patient WHERE city = 'Prague')"),
    ("Which doctor collected the most in fees from completed appointments? "
     "Give the name and the total.",
     f"SELECT T2.name, sum(T1.fee) {APPT_DOC} WHERE T1.status = 'completed' "
     "GROUP BY T1.doctor_id ORDER BY sum(T1.fee) DESC LIMIT 1"),
    ("Which medications were prescribed in appointments for flu symptoms?",
     f"SELECT DISTINCT T1.medication {RX_APPT} WHERE T2.reason = 'flu symptoms'"),
    ("Which patients had more than four appointments? Show the name and number.",
     f"SELECT T2.name, count(*) {APPT_PAT} GROUP BY T1.patient_id HAVING count(*) > 4"),
)
