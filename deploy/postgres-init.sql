-- One database per component: each service owns its data and no service reads
-- another's tables. The postgres image runs this once, as POSTGRES_USER, on an empty
-- data directory; `bersinar migrate` then creates the tables.
CREATE DATABASE bersinar_mitra;
CREATE DATABASE bersinar_rujukan;
CREATE DATABASE bersinar_laporan;
CREATE DATABASE bersinar_notifikasi;
CREATE DATABASE bersinar_gateway;
