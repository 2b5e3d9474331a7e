"""The bookshop database: authors, books, customers and their orders."""

from __future__ import annotations

import random
from typing import Any

from .common import CITIES, FIRST_NAMES, LAST_NAMES, add_days, random_date

DB_ID = "bookshop"
SEED = 1101

SCHEMA = (
    """CREATE TABLE author (
    author_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    country TEXT,
    birth_year INTEGER
)""",
    """CREATE TABLE book (
    book_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    author_id INTEGER NOT NULL,
    genre TEXT NOT NULL,
    price REAL NOT NULL,
    publication_year INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    FOREIGN KEY (author_id) REFERENCES author(author_id)
)""",
    """CREATE TABLE customer (
    customer_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    city TEXT NOT NULL,
    email TEXT,
    joined_date DATE NOT NULL
)""",
    """CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    order_date DATE NOT NULL,
    status TEXT NOT NULL,
    shipped_date DATE,
    FOREIGN KEY (customer_id) REFERENCES customer(customer_id)
)""",
    """CREATE TABLE order_item (
    order_id INTEGER NOT NULL,
    book_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    PRIMARY KEY (order_id, book_id),
    FOREIGN KEY (order_id) REFERENCES orders(order_id),
    FOREIGN KEY (book_id) REFERENCES book(book_id)
)""",
)

AUTHORS = (
    ("Margaret Ellison", "United Kingdom", 1948),
    ("Tomás Aranda", "Spain", 1971),
    ("Ingrid Solberg", "Norway", 1965),
    ("Daniel Okoye", "Nigeria", 1980),
    ("Claire Beaumont", "France", 1959),
    ("Hiroshi Sato", "Japan", 1962),
    ("Rachel Adler", "United States", 1975),
    ("Pieter de Vries", "Netherlands", None),
    ("Anna Kowalczyk", "Poland", 1983),
    ("Seamus Doyle", "Ireland", 1955),
    ("Lucia Ferrante", "Italy", 1969),
    ("Graham Whitaker", "United Kingdom", 1977),
    ("Maya Desai", "India", 1986),
    ("Erik Lindqvist", "Sweden", None),
    ("Sophie Tremblay", "Canada", 1972),
    ("Jonah Reyes", "United States", 1990),
    ("Katarina Horvat", None, 1961),
    ("Felipe Moura", "Brazil", 1979),
    ("Helen Marsh", "Canada", 1951),
    ("Yusuf Demir", "Turkey", 1984),
)
GENRES = ("Fiction", "Mystery", "Science Fiction", "History", "Poetry", "Biography",
          "Children", "Cookery")
ADJECTIVES = ("Silent", "Last", "Hidden", "Northern", "Broken", "Golden", "Winter",
              "Distant", "Quiet", "Burning", "Secret", "Paper", "Salt", "Glass")
NOUNS = ("Harbour", "Garden", "Orchard", "Lighthouse", "River", "Kingdom", "Archive",
         "Station", "Island", "Letters", "Kitchen", "Orbit", "Bridge", "Forest")
STATUSES = ("delivered", "delivered", "delivered", "shipped", "shipped", "pending",
            "cancelled")


def populate(rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """All rows of every table, drawn from rng."""
    authors = [(i + 1, *row) for i, row in enumerate(AUTHORS)]
    titles: list[str] = []
    while len(titles) < 64:
        title = f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        if title not in titles:
            titles.append(title)
    books = []
    for i, title in enumerate(titles):
        genre = GENRES[i % len(GENRES)] if i < 16 else rng.choice(GENRES)
        price = round(rng.uniform(6, 40), 1) - 0.01
        pages = rng.randint(24, 140) if genre in ("Children", "Poetry") else rng.randint(150, 900)
        books.append((i + 1, title, rng.randint(1, len(AUTHORS)), genre, price,
                      rng.randint(1988, 2024), pages))
    customers = []
    for i in range(90):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = None if rng.random() < 0.15 else (
            f"{first.lower()}.{last.lower().replace(chr(39), '')}{i + 1}@example.com")
        customers.append((i + 1, first, last, rng.choice(CITIES), email,
                          random_date(rng, "2018-03-01", "2024-11-30")))
    orders, items = [], []
    for order_id in range(1, 281):
        customer_id = rng.randint(1, 78)  # the last customers never ordered
        day = random_date(rng, "2023-01-02", "2024-12-30")
        status = rng.choice(STATUSES)
        shipped = add_days(day, rng.randint(1, 6)) if status in ("delivered", "shipped") else None
        orders.append((order_id, customer_id, day, status, shipped))
        for book_id in sorted(rng.sample(range(1, 59), rng.randint(1, 4))):
            price = books[book_id - 1][4]
            if rng.random() < 0.2:
                price = round(price * 0.8, 2)
            items.append((order_id, book_id, rng.choice((1, 1, 1, 2, 2, 3)), price))
    return {"author": authors, "book": books, "customer": customers, "orders": orders,
            "order_item": items}


BOOK_AUTHOR = "FROM book AS T1 JOIN author AS T2 ON T1.author_id = T2.author_id"
ORDER_CUST = "FROM orders AS T1 JOIN customer AS T2 ON T1.customer_id = T2.customer_id"

TRAIN = (
    ("How many books does the shop sell?", "SELECT count(*) FROM book"),
    ("What are the titles of books priced above 30 dollars?",
     "SELECT title FROM book WHERE price > 30"),
    ("How many customers live in Lisbon?", "SELECT count(*) FROM customer WHERE city = 'Lisbon'"),
    ("What is the average price of a book?", "SELECT avg(price) FROM book"),
    ("List all the different book genres.", "SELECT DISTINCT genre FROM book"),
    ("How many orders were cancelled?", "SELECT count(*) FROM orders WHERE status = 'cancelled'"),
    ("What are the last names of customers who have no email address on file?",
     "SELECT last_name FROM customer WHERE email IS NULL"),
    ("What is the most recent publication year of any book?",
     "SELECT max(publication_year) FROM book"),
    ("List book titles from the cheapest to the most expensive.",
     "SELECT title FROM book ORDER BY price"),
    ("Give the first and last names of customers from Berlin.",
     "SELECT first_name, last_name FROM customer WHERE city = 'Berlin'"),
    ("How many books are there in each genre?", "SELECT genre, count(*) FROM book GROUP BY genre"),
    ("What is the title of the most expensive book?",
     "SELECT title FROM book ORDER BY price DESC LIMIT 1"),
    ("Which books were written by Canadian authors? Give their titles.",
     f"SELECT T1.title {BOOK_AUTHOR} WHERE T2.country = 'Canada'"),
    ("Show each author's name and how many books of theirs the shop carries.",
     f"SELECT T2.name, count(*) {BOOK_AUTHOR} GROUP BY T1.author_id"),
    ("What is the average book price in each genre?",
     "SELECT genre, avg(price) FROM book GROUP BY genre"),
    ("List the titles and prices of the five cheapest books.",
     "SELECT title, price FROM book ORDER BY price LIMIT 5"),
    ("On which dates did customers living in Porto place orders?",
     f"SELECT T1.order_date {ORDER_CUST} WHERE T2.city = 'Porto'"),
    ("How many orders are there with each status?",
     "SELECT status, count(*) FROM orders GROUP BY status"),
    ("Which genres have an average price above 22 dollars?",
     "SELECT genre FROM book GROUP BY genre HAVING avg(price) > 22"),
    ("What is the total number of copies sold in each genre?",
     "SELECT T1.genre, sum(T2.quantity) FROM book AS T1 JOIN order_item AS T2 "
     "ON T1.book_id = T2.book_id GROUP BY T1.genre"),
    ("Which books were published between 2000 and 2010?",
     "SELECT title FROM book WHERE publication_year BETWEEN 2000 AND 2010"),
    ("Which city has the most customers?",
     "SELECT city FROM customer GROUP BY city ORDER BY count(*) DESC LIMIT 1"),
    ("What are the titles of books that have never been ordered?",
     "SELECT title FROM book WHERE book_id NOT IN (SELECT book_id FROM order_item)"),
    ("Which books cost more than the average book? List their titles.",
     "SELECT title FROM book WHERE price > (SELECT avg(price) FROM book)"),
    ("Give the first and last names of customers who have never placed an order.",
     "SELECT first_name, last_name FROM customer "
     "WHERE customer_id NOT IN (SELECT customer_id FROM orders)"),
    ("Which cities have customers who joined before 2020 and also customers who joined in 2024?",
     "SELECT city FROM customer WHERE joined_date < '2020-01-01' INTERSECT "
     "SELECT city FROM customer WHERE joined_date >= '2024-01-01'"),
    ("Which genres have no books by British authors?",
     "SELECT genre FROM book EXCEPT "
     f"SELECT T1.genre {BOOK_AUTHOR} WHERE T2.country = 'United Kingdom'"),
    ("Which authors have more than three books in the shop?",
     f"SELECT T2.name {BOOK_AUTHOR} GROUP BY T1.author_id HAVING count(*) > 3"),
    ("Which customer has spent the most money? Give the first and last name.",
     "SELECT T1.first_name, T1.last_name FROM customer AS T1 JOIN orders AS T2 "
     "ON T1.customer_id = T2.customer_id JOIN order_item AS T3 ON T2.order_id = T3.order_id "
     "GROUP BY T1.customer_id ORDER BY sum(T3.quantity * T3.unit_price) DESC LIMIT 1"),
    ("Which cities have customers with a pending order or a cancelled order?",
     f"SELECT T2.city {ORDER_CUST} WHERE T1.status = 'pending' UNION "
     f"SELECT T2.city {ORDER_CUST} WHERE T1.status = 'cancelled'"),
    ("Which genre has the highest average price?",
     "SELECT genre FROM book GROUP BY genre ORDER BY avg(price) DESC LIMIT 1"),
    ("For each author with at least two books, show the name and the average page count, "
     "longest first.",
     f"SELECT T2.name, avg(T1.pages) {BOOK_AUTHOR} GROUP BY T1.author_id "
     "HAVING count(*) >= 2 ORDER BY avg(T1.pages) DESC"),
    ("What are the titles of the three best-selling books by number of copies?",
     "SELECT T1.title FROM book AS T1 JOIN order_item AS T2 ON T1.book_id = T2.book_id "
     "GROUP BY T1.book_id ORDER BY sum(T2.quantity) DESC LIMIT 3"),
    ("Which customers from Madrid or Milan have an email address? Give first name and email.",
     "SELECT first_name, email FROM customer "
     "WHERE (city = 'Madrid' OR city = 'Milan') AND email IS NOT NULL"),
    ("List the names of authors whose country is unknown or who were born before 1955.",
     "SELECT name FROM author WHERE country IS NULL OR birth_year < 1955"),
    ("How many distinct customers have had an order delivered?",
     "SELECT count(DISTINCT customer_id) FROM orders WHERE status = 'delivered'"),
    ("List the titles and prices of books dearer than every cookery book, most expensive first.",
     "SELECT title, price FROM book WHERE price > "
     "(SELECT max(price) FROM book WHERE genre = 'Cookery') ORDER BY price DESC"),
    ("Which authors have written both mystery and fiction books?",
     f"SELECT T2.name {BOOK_AUTHOR} WHERE T1.genre = 'Mystery' INTERSECT "
     f"SELECT T2.name {BOOK_AUTHOR} WHERE T1.genre = 'Fiction'"),
    ("Which genre sold the most copies in 2024?",
     "SELECT T1.genre FROM book AS T1 JOIN order_item AS T2 ON T1.book_id = T2.book_id "
     "JOIN orders AS T3 ON T2.order_id = T3.order_id WHERE T3.order_date LIKE '2024%' "
     "GROUP BY T1.genre ORDER BY sum(T2.quantity) DESC LIMIT 1"),
)

DEV = (
    ("How many authors are there?", "SELECT count(*) FROM author"),
    ("Which books have more than 600 pages?", "SELECT title FROM book WHERE pages > 600"),
    ("How many orders have not been shipped yet?",
     "SELECT count(*) FROM orders WHERE shipped_date IS NULL"),
    ("How many customers does each city have?",
     "SELECT city, count(*) FROM customer GROUP BY city"),
    ("Who is the oldest author whose birth year is known?",
     "SELECT name FROM author WHERE birth_year IS NOT NULL ORDER BY birth_year LIMIT 1"),
    ("Show the author name and title of every poetry book.",
     f"SELECT T2.name, T1.title {BOOK_AUTHOR} WHERE T1.genre = 'Poetry'"),
    ("What is the cheapest mystery book? Give its title and price.",
     "SELECT title, price FROM book WHERE genre = 'Mystery' ORDER BY price LIMIT 1"),
    ("Which authors have no book in the shop published after 2015?",
     "SELECT name FROM author EXCEPT "
     f"SELECT T2.name {BOOK_AUTHOR} WHERE T1.publication_year > 2015"),
    ("What is the total revenue from order items, per order status?",
     "SELECT T1.status, sum(T2.quantity * T2.unit_price) FROM orders AS T1 "
     "JOIN order_item AS T2 ON T1.order_id = T2.order_id GROUP BY T1.status"),
    ("Which customers placed more than five orders? Give first name, last name and the count.",
     "SELECT T2.first_name, T2.last_name, count(*) "
     f"{ORDER_CUST} GROUP BY T1.customer_id HAVING count(*) > 5"),
    ("Which books are longer than every children's book?",
     "SELECT title FROM book WHERE pages > (SELECT max(pages) FROM book WHERE genre = 'Children')"),
    ("Which city's customers placed the most orders in 2024?",
     f"SELECT T2.city {ORDER_CUST} WHERE T1.order_date LIKE '2024%' "
     "GROUP BY T2.city ORDER BY count(*) DESC LIMIT 1"),
    ("Which authors have a book under 10 dollars and also a book over 35 dollars? "
     "Give name and country.",
     f"SELECT T2.name, T2.country {BOOK_AUTHOR} WHERE T1.price < 10 INTERSECT "
     f"SELECT T2.name, T2.country {BOOK_AUTHOR} WHERE T1.price > 35"),
)
