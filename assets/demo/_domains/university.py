"""The university database: departments, instructors, courses, students and enrolments."""

from __future__ import annotations

import random
from typing import Any

from .common import unique_names

DB_ID = "university"
SEED = 4404

SCHEMA = (
    """CREATE TABLE department (
    dept_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    building TEXT NOT NULL,
    budget INTEGER NOT NULL
)""",
    """CREATE TABLE instructor (
    instructor_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    dept_id INTEGER NOT NULL,
    rank TEXT NOT NULL,
    salary INTEGER NOT NULL,
    office TEXT,
    FOREIGN KEY (dept_id) REFERENCES department(dept_id)
)""",
    """CREATE TABLE course (
    course_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    dept_id INTEGER NOT NULL,
    credits INTEGER NOT NULL,
    level INTEGER NOT NULL,
    FOREIGN KEY (dept_id) REFERENCES department(dept_id)
)""",
    """CREATE TABLE student (
    student_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    major_dept_id INTEGER,
    enrollment_year INTEGER NOT NULL,
    gpa REAL,
    FOREIGN KEY (major_dept_id) REFERENCES department(dept_id)
)""",
    """CREATE TABLE enrollment (
    student_id INTEGER NOT NULL,
    course_id INTEGER NOT NULL,
    semester TEXT NOT NULL,
    instructor_id INTEGER NOT NULL,
    grade TEXT,
    PRIMARY KEY (student_id, course_id, semester),
    FOREIGN KEY (student_id) REFERENCES student(student_id),
    FOREIGN KEY (course_id) REFERENCES course(course_id),
    FOREIGN KEY (instructor_id) REFERENCES instructor(instructor_id)
)""",
)

DEPARTMENTS = (
    ("Computer Science", "Turing Hall", 2400000),
    ("Mathematics", "Noether Building", 1350000),
    ("Physics", "Meitner Laboratory", 1900000),
    ("History", "Braudel House", 720000),
    ("Economics", "Ostrom Centre", 1100000),
    ("Biology", "Franklin Wing", 1650000),
    ("Philosophy", "Noether Building", 480000),
)
COURSES = (
    ("Introduction to Programming", 1, 6, 100), ("Data Structures", 1, 6, 200),
    ("Databases", 1, 6, 200), ("Operating Systems", 1, 6, 300),
    ("Machine Learning", 1, 6, 400), ("Compilers", 1, 6, 400),
    ("Calculus I", 2, 6, 100), ("Linear Algebra", 2, 6, 100), ("Probability", 2, 6, 200),
    ("Real Analysis", 2, 6, 300), ("Number Theory", 2, 3, 400),
    ("Classical Mechanics", 3, 6, 100), ("Electromagnetism", 3, 6, 200),
    ("Quantum Physics", 3, 6, 300), ("Astrophysics", 3, 3, 400),
    ("Medieval Europe", 4, 3, 100), ("The Atlantic World", 4, 3, 200),
    ("History of Science", 4, 3, 300),
    ("Microeconomics", 5, 6, 100), ("Macroeconomics", 5, 6, 100),
    ("Econometrics", 5, 6, 300), ("Behavioural Economics", 5, 3, 400),
    ("Cell Biology", 6, 6, 100), ("Genetics", 6, 6, 200), ("Ecology", 6, 3, 200),
    ("Neuroscience", 6, 6, 400),
    ("Logic", 7, 3, 100), ("Ethics", 7, 3, 200), ("Philosophy of Mind", 7, 3, 300),
    ("Topology", 2, 6, 400), ("Cryptography", 1, 3, 400),
)
RANKS = (("Lecturer", 52000), ("Assistant Professor", 64000), ("Associate Professor", 78000),
         ("Professor", 96000))
SEMESTERS = ("Fall 2023", "Spring 2024", "Fall 2024", "Spring 2025")
GRADES = ("A", "A", "B", "B", "B", "C", "C", "D", "F")


def populate(rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """All rows of every table, drawn from rng."""
    departments = [(i + 1, *row) for i, row in enumerate(DEPARTMENTS)]
    courses = [(i + 1, *row) for i, row in enumerate(COURSES)]
    names = unique_names(rng, 30 + 210)
    instructors = []
    for i in range(30):
        rank, base = rng.choice(RANKS)
        office = None if rng.random() < 0.2 else f"{rng.choice('ABCD')}{rng.randint(101, 420)}"
        instructors.append((i + 1, names[i], i % 7 + 1 if i < 14 else rng.randint(1, 7), rank,
                            base + rng.randrange(0, 16000, 250), office))
    students = []
    for i in range(210):
        year = rng.choice((2021, 2022, 2023, 2024, 2025))
        major = None if rng.random() < 0.08 else rng.choice((1, 1, 2, 3, 4, 5, 5, 6, 6))
        gpa = None if year == 2025 else round(rng.uniform(2.0, 4.0), 2)
        students.append((i + 1, names[30 + i], major, year, gpa))
    by_dept: dict[int, list[int]] = {}
    for instructor in instructors:
        by_dept.setdefault(instructor[2], []).append(instructor[0])
    enrollments = []
    for student in students[:200]:  # the newest admissions have not enrolled yet
        first = {2024: 2, 2025: 3}.get(student[3], 0)
        for semester in SEMESTERS[first:]:
            for course in rng.sample(courses[:29], rng.randint(1, 2)):
                grade = None if semester == "Spring 2025" else rng.choice(GRADES)
                enrollments.append((student[0], course[0], semester,
                                    rng.choice(by_dept[course[2]]), grade))
    return {"department": departments, "instructor": instructors, "course": courses,
            "student": students, "enrollment": enrollments}


INS_DEPT = "FROM instructor AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id"
COURSE_DEPT = "FROM course AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id"
ENR_COURSE = "FROM enrollment AS T1 JOIN course AS T2 ON T1.course_id = T2.course_id"
ENR_STUDENT = "FROM enrollment AS T1 JOIN student AS T2 ON T1.student_id = T2.student_id"
STU_DEPT = "FROM student AS T1 JOIN department AS T2 ON T1.major_dept_id = T2.dept_id"

TRAIN = (
    ("How many courses are offered?", "SELECT count(*) FROM course"),
    ("What are the titles of 400-level courses?", "SELECT title FROM course WHERE level = 400"),
    ("How many students enrolled in 2023?",
     "SELECT count(*) FROM student WHERE enrollment_year = 2023"),
    ("What is the average GPA of students with a recorded GPA?",
     "SELECT avg(gpa) FROM student WHERE gpa IS NOT NULL"),
    ("List the distinct academic ranks of instructors.", "SELECT DISTINCT rank FROM instructor"),
    ("Which instructors have no office assigned?",
     "SELECT name FROM instructor WHERE office IS NULL"),
    ("What is the largest department budget?", "SELECT max(budget) FROM department"),
    ("How many enrolments are still without a grade?",
     "SELECT count(*) FROM enrollment WHERE grade IS NULL"),
    ("List the department names ordered by budget, largest first.",
     "SELECT name FROM department ORDER BY budget DESC"),
    ("Show the name and salary of every full professor.",
     "SELECT name, salary FROM instructor WHERE rank = 'Professor'"),
    ("How many courses are there at each level?",
     "SELECT level, count(*) FROM course GROUP BY level"),
    ("Which student has the highest GPA?", "SELECT name FROM student ORDER BY gpa DESC LIMIT 1"),
    ("What are the titles of courses offered by the Physics department?",
     f"SELECT T1.title {COURSE_DEPT} WHERE T2.name = 'Physics'"),
    ("How many instructors does each department have? Show the department name.",
     f"SELECT T2.name, count(*) {INS_DEPT} GROUP BY T1.dept_id"),
    ("What is the average instructor salary for each rank?",
     "SELECT rank, avg(salary) FROM instructor GROUP BY rank"),
    ("List the names and GPAs of the three students with the lowest GPA.",
     "SELECT name, gpa FROM student WHERE gpa IS NOT NULL ORDER BY gpa LIMIT 3"),
    ("Which students major in Economics? Give their names.",
     f"SELECT T1.name {STU_DEPT} WHERE T2.name = 'Economics'"),
    ("How many enrolments does each semester have?",
     "SELECT semester, count(*) FROM enrollment GROUP BY semester"),
    ("Which ranks have an average salary above 70000?",
     "SELECT rank FROM instructor GROUP BY rank HAVING avg(salary) > 70000"),
    ("How many students took each course? Show the course title.",
     f"SELECT T2.title, count(*) {ENR_COURSE} GROUP BY T1.course_id"),
    ("Which building houses the most departments?",
     "SELECT building FROM department GROUP BY building ORDER BY count(*) DESC LIMIT 1"),
    ("Which courses have never had anyone enrolled? Give their titles.",
     "SELECT title FROM course WHERE course_id NOT IN (SELECT course_id FROM enrollment)"),
    ("Which instructors earn more than the average instructor? List names.",
     "SELECT name FROM instructor WHERE salary > (SELECT avg(salary) FROM instructor)"),
    ("Which students have not enrolled in any course? Show name and enrolment year.",
     "SELECT name, enrollment_year FROM student "
     "WHERE student_id NOT IN (SELECT student_id FROM enrollment)"),
    ("Which courses had enrolments in both Fall 2023 and Fall 2024? Give course ids.",
     "SELECT course_id FROM enrollment WHERE semester = 'Fall 2023' INTERSECT "
     "SELECT course_id FROM enrollment WHERE semester = 'Fall 2024'"),
    ("Which departments have no students majoring in them?",
     "SELECT name FROM department EXCEPT "
     f"SELECT T2.name {STU_DEPT}"),
    ("Which instructors have taught more than 30 enrolments? Give their names.",
     "SELECT T2.name FROM enrollment AS T1 JOIN instructor AS T2 "
     "ON T1.instructor_id = T2.instructor_id GROUP BY T1.instructor_id HAVING count(*) > 30"),
    ("Which course has the most A grades? Give its title.",
     f"SELECT T2.title {ENR_COURSE} WHERE T1.grade = 'A' "
     "GROUP BY T1.course_id ORDER BY count(*) DESC LIMIT 1"),
    ("Which students got an F in Calculus I or in Linear Algebra? Give their names.",
     "SELECT T3.name FROM enrollment AS T1 JOIN course AS T2 ON T1.course_id = T2.course_id "
     "JOIN student AS T3 ON T1.student_id = T3.student_id "
     "WHERE T2.title = 'Calculus I' AND T1.grade = 'F' UNION "
     "SELECT T3.name FROM enrollment AS T1 JOIN course AS T2 ON T1.course_id = T2.course_id "
     "JOIN student AS T3 ON T1.student_id = T3.student_id "
     "WHERE T2.title = 'Linear Algebra' AND T1.grade = 'F'"),
    ("Which department offers the most credits in total across its courses?",
     f"SELECT T2.name {COURSE_DEPT} GROUP BY T1.dept_id ORDER BY sum(T1.credits) DESC LIMIT 1"),
    ("For majors with at least ten students, show the department name and the average GPA, "
     "best first.",
     f"SELECT T2.name, avg(T1.gpa) {STU_DEPT} GROUP BY T1.major_dept_id "
     "HAVING count(*) >= 10 ORDER BY avg(T1.gpa) DESC"),
    ("Which students are undeclared (no major)? Give name and enrolment year.",
     "SELECT name, enrollment_year FROM student WHERE major_dept_id IS NULL"),
    ("How many distinct students took a Computer Science course?",
     f"SELECT count(DISTINCT T1.student_id) {ENR_COURSE} JOIN department AS T3 "
     "ON T2.dept_id = T3.dept_id WHERE T3.name = 'Computer Science'"),
    ("List the titles of 6-credit courses at level 300 or above.",
     "SELECT title FROM course WHERE credits = 6 AND level >= 300"),
    ("What are the names of instructors whose office is in building A, with their rank?",
     "SELECT name, rank FROM instructor WHERE office LIKE 'A%'"),
    ("Which students with a GPA above 3.5 have never received an F? Give name and GPA.",
     "SELECT name, gpa FROM student WHERE gpa > 3.5 EXCEPT "
     f"SELECT T2.name, T2.gpa {ENR_STUDENT} WHERE T1.grade = 'F'"),
    ("How many Fall 2024 enrolments did each department's courses get? Show the department "
     "name, busiest first.",
     f"SELECT T3.name, count(*) {ENR_COURSE} JOIN department AS T3 ON T2.dept_id = T3.dept_id "
     "WHERE T1.semester = 'Fall 2024' GROUP BY T2.dept_id ORDER BY count(*) DESC"),
    ("Which Mathematics instructors earn more than every lecturer?",
     f"SELECT T1.name {INS_DEPT} WHERE T2.name = 'Mathematics' "
     "AND T1.salary > (SELECT max(salary) FROM instructor WHERE rank = 'Lecturer')"),
)

DEV = (
    ("How many instructors are there?", "SELECT count(*) FROM instructor"),
    ("Which courses are worth 3 credits?", "SELECT title FROM course WHERE credits = 3"),
    ("How many students have no GPA recorded yet?",
     "SELECT count(*) FROM student WHERE gpa IS NULL"),
    ("How many students entered in each year?",
     "SELECT enrollment_year, count(*) FROM student GROUP BY enrollment_year"),
    ("Who is the best-paid instructor? Give the name and salary.",
     "SELECT name, salary FROM instructor ORDER BY salary DESC LIMIT 1"),
    ("Show each instructor's name together with the name of their department.",
     f"SELECT T1.name, T2.name {INS_DEPT}"),
    ("What grades were given in Databases, and how often each?",
     f"SELECT T1.grade, count(*) {ENR_COURSE} WHERE T2.title = 'Databases' "
     "AND T1.grade IS NOT NULL GROUP BY T1.grade"),
    ("Which students have a GPA above the average GPA of Mathematics majors?",
     "SELECT name FROM student WHERE gpa > "
     f"(SELECT avg(T1.gpa) {STU_DEPT} WHERE T2.name = 'Mathematics')"),
    ("Which buildings house a department with a budget under one million and also one with "
     "a budget of at least one million?",
     "SELECT building FROM department WHERE budget < 1000000 INTERSECT "
     "SELECT building FROM department WHERE budget >= 1000000"),
    ("Which course has the most enrolments? Give the title and the number of enrolments.",
     f"SELECT T2.title, count(*) {ENR_COURSE} GROUP BY T1.course_id "
     "ORDER BY count(*) DESC LIMIT 1"),
    ("Which departments employ more than four instructors?",
     f"SELECT T2.name {INS_DEPT} GROUP BY T1.dept_id HAVING count(*) > 4"),
    ("Which instructors never gave an F? List their names.",
     "SELECT name FROM instructor EXCEPT SELECT T2.name FROM enrollment AS T1 "
     "JOIN instructor AS T2 ON T1.instructor_id = T2.instructor_id WHERE T1.grade = 'F'"),
    ("List the titles and credits of courses taken by Biology majors, without duplicates, "
     "in title order.",
     "SELECT DISTINCT T2.title, T2.credits FROM enrollment AS T1 JOIN course AS T2 "
     "ON T1.course_id = T2.course_id JOIN student AS T3 ON T1.student_id = T3.student_id "
     "JOIN department AS T4 ON T3.major_dept_id = T4.dept_id WHERE T4.name = 'Biology' "
     "ORDER BY T2.title"),
)
