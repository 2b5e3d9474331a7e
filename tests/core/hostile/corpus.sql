-- Hostile statements for tests/core/test_sqlexec.py.
-- Each case starts with a line "-- case: NAME | EXPECT" where EXPECT is an error type,
-- several types joined by "/", or "ok" (allowed, but must still leave every file untouched).
-- {OUT} is replaced by a scratch folder that must stay empty; {CWD} names a relative path.

-- case: insert | not_allowed
INSERT INTO singer (singer_id, name, age) VALUES (99, 'x', 1);
-- case: insert_select | not_allowed
INSERT INTO singer SELECT * FROM singer;
-- case: replace_into | not_allowed
REPLACE INTO singer (singer_id, name, age) VALUES (1, 'x', 1);
-- case: insert_or_replace | not_allowed
INSERT OR REPLACE INTO singer (singer_id, name, age) VALUES (1, 'x', 1);
-- case: upsert | not_allowed
INSERT INTO singer (singer_id, name, age) VALUES (1, 'x', 1) ON CONFLICT(singer_id) DO UPDATE SET age = 0;
-- case: update | not_allowed
UPDATE singer SET age = age + 1;
-- case: delete | not_allowed
DELETE FROM singer;
-- case: cte_delete | not_allowed
WITH doomed AS (SELECT singer_id FROM singer) DELETE FROM singer WHERE singer_id IN doomed;
-- case: cte_insert | not_allowed
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 10) INSERT INTO singer (name) SELECT x FROM n;
-- case: create_table | not_allowed
CREATE TABLE evil (a);
-- case: create_table_as | not_allowed
CREATE TABLE evil AS SELECT * FROM singer;
-- case: create_temp_table | not_allowed
CREATE TEMP TABLE evil (a);
-- case: create_temp_view | not_allowed
CREATE TEMP VIEW evil AS SELECT 1;
-- case: create_index | not_allowed
CREATE INDEX evil_idx ON singer (age);
-- case: create_view | not_allowed
CREATE VIEW evil AS SELECT * FROM singer;
-- case: create_trigger | not_allowed
CREATE TRIGGER evil AFTER INSERT ON singer BEGIN DELETE FROM concert; END;
-- case: create_virtual_table | not_allowed
CREATE VIRTUAL TABLE evil USING fts5(a);
-- case: drop_table | not_allowed
DROP TABLE singer;
-- case: drop_view | not_allowed
DROP VIEW singer_names;
-- case: drop_index | not_allowed
DROP INDEX singer_age;
-- case: alter_rename | not_allowed
ALTER TABLE singer RENAME TO vocalist;
-- case: alter_add_column | not_allowed
ALTER TABLE singer ADD COLUMN evil TEXT;
-- case: alter_drop_column | not_allowed
ALTER TABLE singer DROP COLUMN age;
-- case: reindex | not_allowed
REINDEX;
-- case: reindex_table | not_allowed
REINDEX singer;
-- case: analyze | not_allowed
ANALYZE;
-- case: vacuum | not_allowed
VACUUM;
-- case: vacuum_into_tmp | not_allowed
VACUUM INTO '{OUT}/copy.sqlite';
-- case: vacuum_into_cwd | not_allowed
VACUUM INTO '{CWD}vacuumed.sqlite';
-- case: attach_new_file | not_allowed
ATTACH DATABASE '{OUT}/attached.sqlite' AS evil;
-- case: attach_cwd | not_allowed
ATTACH '{CWD}attached.sqlite' AS evil;
-- case: attach_memory | not_allowed
ATTACH ':memory:' AS evil;
-- case: detach | not_allowed
DETACH DATABASE main;
-- case: begin | not_allowed
BEGIN IMMEDIATE;
-- case: savepoint | not_allowed
SAVEPOINT evil;
-- case: pragma_journal_wal | not_allowed
PRAGMA journal_mode = WAL;
-- case: pragma_user_version | not_allowed
PRAGMA user_version = 5;
-- case: pragma_writable_schema | not_allowed
PRAGMA writable_schema = ON;
-- case: pragma_query_only_off | not_allowed
PRAGMA query_only = OFF;
-- case: pragma_locking_exclusive | not_allowed
PRAGMA locking_mode = EXCLUSIVE;
-- case: pragma_temp_store_directory | not_allowed
PRAGMA temp_store_directory = '{OUT}';
-- case: pragma_wal_checkpoint | not_allowed
PRAGMA wal_checkpoint(TRUNCATE);
-- case: pragma_incremental_vacuum | not_allowed
PRAGMA incremental_vacuum;
-- case: pragma_optimize | not_allowed
PRAGMA optimize;
-- case: pragma_function_form | runtime_error
SELECT * FROM pragma_journal_mode('wal');
-- case: load_extension | not_allowed
SELECT load_extension('{OUT}/evil.so');
-- case: load_extension_entry | not_allowed
SELECT load_extension('libevil', 'sqlite3_evil_init');
-- case: fts3_tokenizer | not_allowed/schema_error
SELECT fts3_tokenizer('simple');
-- case: two_statements | not_allowed
SELECT 1; DROP TABLE singer;
-- case: select_then_insert | not_allowed
SELECT * FROM singer; INSERT INTO singer (name) VALUES ('x');
-- case: explain_insert | not_allowed
EXPLAIN INSERT INTO singer (name) VALUES ('x');
-- case: recursive_cte_bomb | timeout
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n;
-- case: recursive_cte_fanout | timeout/too_large
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n, (SELECT 1 UNION ALL SELECT 2)) SELECT max(x) FROM n;
-- case: generate_series_bomb | timeout
WITH RECURSIVE series(v) AS (SELECT 0 UNION ALL SELECT v + 1 FROM series WHERE v < 9000000000000000000) SELECT sum(v) FROM series;
-- case: cross_join | timeout
SELECT count(*) FROM singer a, singer b, singer c, singer d, singer e, singer f, singer g, singer h;
-- case: cross_join_sorted | timeout
SELECT a.name FROM singer a, singer b, singer c, singer d, singer e, singer f, singer g ORDER BY random() LIMIT 1;
-- case: group_concat_bomb | timeout/too_large
SELECT length(group_concat(a.name || b.name || c.name || d.name)) FROM singer a, singer b, singer c, singer d, singer e, singer f;
-- case: randomblob_1e9 | too_large
SELECT randomblob(1e9);
-- case: zeroblob_bomb | too_large
SELECT zeroblob(2000000000);
-- case: printf_bomb | too_large
SELECT length(printf('%.*c', 1000000000, 'x'));
-- case: replace_doubling | timeout/too_large
WITH RECURSIVE s(x) AS (SELECT 'ab' UNION ALL SELECT x || x FROM s) SELECT length(x) FROM s ORDER BY 1 DESC LIMIT 1;
-- case: like_cross_join | timeout
SELECT count(*) FROM singer a, singer b, singer c, singer d, singer e WHERE a.name || b.name LIKE '%s%i%n%g%';
-- case: format_char_bomb | too_large
SELECT format('%!.*c', 2000000000, 'x');
-- case: update_schema_table | not_allowed
UPDATE sqlite_master SET sql = 'CREATE TABLE singer (x)' WHERE name = 'singer';
-- case: table_info_is_fine | ok
PRAGMA table_info(singer);
-- case: pragma_table_info_function_is_fine | ok
SELECT name FROM pragma_table_info('singer');
-- case: schema_read_is_fine | ok
SELECT name, sql FROM sqlite_master;
-- case: json_each_is_fine | ok
SELECT value FROM json_each('[1, 2, 3]');
