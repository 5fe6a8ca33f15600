-- pacs_lite schema, version 1, in the MySQL 8 / MariaDB 10.6+ dialect.
--
-- pacs_lite.db derives the SQLite schema from this file (it drops the table
-- options and turns AUTO_INCREMENT keys into SQLite's INTEGER PRIMARY KEY),
-- so keep to that shape: every index as its own CREATE INDEX statement,
-- AUTO_INCREMENT only on "id BIGINT AUTO_INCREMENT PRIMARY KEY".
-- Later versions are migrations in pacs_lite/schema.py; never edit a released
-- version here.
-- Timestamps are UTC. DICOM dates are ISO text 'YYYY-MM-DD'.

CREATE TABLE schema_version (
    version INTEGER NOT NULL PRIMARY KEY,
    applied_at DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE users (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    username VARCHAR(64) NOT NULL,
    password_hash VARCHAR(100) NOT NULL,
    role VARCHAR(32) NOT NULL,
    full_name VARCHAR(128) NOT NULL DEFAULT '',
    email VARCHAR(254) NOT NULL DEFAULT '',
    dicom_name VARCHAR(324) NOT NULL DEFAULT '',        -- PN, as on ReferringPhysicianName
    dicom_name_key VARCHAR(324) NOT NULL DEFAULT '',    -- dicom_name normalised for matching
    is_active SMALLINT NOT NULL DEFAULT 1,
    must_change_password SMALLINT NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    last_login_at DATETIME NULL,
    CONSTRAINT users_username_unique UNIQUE (username),
    CONSTRAINT users_role_check CHECK (role IN ('admin', 'radiologist', 'referring_doctor'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    token_hash CHAR(64) NOT NULL,                       -- SHA-256 hex of the cookie token
    user_id BIGINT NOT NULL,
    remember SMALLINT NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL,
    expires_at DATETIME NOT NULL,
    last_seen_at DATETIME NOT NULL,
    ip VARCHAR(45) NOT NULL DEFAULT '',
    user_agent VARCHAR(255) NOT NULL DEFAULT '',
    CONSTRAINT sessions_token_unique UNIQUE (token_hash),
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Failed logins only; a successful login clears the username's rows.
CREATE TABLE login_attempts (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    username VARCHAR(64) NOT NULL,
    ip VARCHAR(45) NOT NULL,
    attempted_at DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX login_attempts_username ON login_attempts (username, attempted_at);
CREATE INDEX login_attempts_ip ON login_attempts (ip, attempted_at);

CREATE TABLE auth_events (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    created_at DATETIME NOT NULL,
    event_type VARCHAR(32) NOT NULL,   -- login, logout, login_failed, lockout, user_created, ...
    username VARCHAR(64) NOT NULL DEFAULT '',   -- whom the event is about (as typed, for failures)
    actor VARCHAR(64) NOT NULL DEFAULT '',      -- who did it, when not the user themself
    detail VARCHAR(255) NOT NULL DEFAULT '',
    ip VARCHAR(45) NOT NULL DEFAULT '',
    user_agent VARCHAR(255) NOT NULL DEFAULT ''
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX auth_events_created ON auth_events (created_at);
CREATE INDEX auth_events_username ON auth_events (username, created_at);

CREATE TABLE study_access_log (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    accessed_at DATETIME NOT NULL,
    user_id BIGINT NOT NULL,
    username VARCHAR(64) NOT NULL,
    patient_id VARCHAR(64) NOT NULL DEFAULT '',         -- LO, DICOM PatientID
    patient_name VARCHAR(324) NOT NULL DEFAULT '',      -- PN, display form
    study_uid VARCHAR(64) NOT NULL,                     -- UI
    action VARCHAR(32) NOT NULL DEFAULT 'view',
    ip VARCHAR(45) NOT NULL DEFAULT '',
    user_agent VARCHAR(255) NOT NULL DEFAULT ''
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX study_access_log_user ON study_access_log (user_id, accessed_at);
CREATE INDEX study_access_log_accessed ON study_access_log (accessed_at);
CREATE INDEX study_access_log_study ON study_access_log (study_uid);

-- The cache of Orthanc's metadata, kept by pacs_lite.sync.
CREATE TABLE cached_patients (
    orthanc_id CHAR(44) NOT NULL PRIMARY KEY,
    patient_id VARCHAR(64) NOT NULL DEFAULT '',         -- LO
    patient_name VARCHAR(324) NOT NULL DEFAULT '',      -- PN, display form "DOE, JOHN"
    name_key VARCHAR(324) NOT NULL DEFAULT '',          -- upper case, accents folded, words by spaces
    patient_id_key VARCHAR(64) NOT NULL DEFAULT '',     -- upper case, accents folded
    birth_date CHAR(10) NOT NULL DEFAULT '',
    sex VARCHAR(16) NOT NULL DEFAULT '',                -- CS
    study_count INTEGER NOT NULL DEFAULT 0,
    last_study_date CHAR(10) NOT NULL DEFAULT '',
    modalities VARCHAR(255) NOT NULL DEFAULT '',        -- comma separated, sorted
    updated_at DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX cached_patients_last_study ON cached_patients (last_study_date, orthanc_id);
CREATE INDEX cached_patients_name ON cached_patients (name_key);
CREATE INDEX cached_patients_patient_id ON cached_patients (patient_id_key);

CREATE TABLE cached_studies (
    orthanc_id CHAR(44) NOT NULL PRIMARY KEY,
    patient_orthanc_id CHAR(44) NOT NULL,
    study_uid VARCHAR(64) NOT NULL,                     -- UI
    study_date CHAR(10) NOT NULL DEFAULT '',
    study_time VARCHAR(16) NOT NULL DEFAULT '',         -- TM
    description VARCHAR(64) NOT NULL DEFAULT '',        -- LO
    accession_number VARCHAR(16) NOT NULL DEFAULT '',   -- SH
    referring_physician VARCHAR(324) NOT NULL DEFAULT '',      -- PN, display form
    referring_physician_key VARCHAR(324) NOT NULL DEFAULT '',  -- normalised like users.dicom_name_key
    modalities VARCHAR(255) NOT NULL DEFAULT '',
    series_count INTEGER NOT NULL DEFAULT 0,
    instance_count INTEGER NOT NULL DEFAULT 0,
    patient_id VARCHAR(64) NOT NULL DEFAULT '',         -- the study's own copy of the patient tags
    patient_name VARCHAR(324) NOT NULL DEFAULT '',
    birth_date CHAR(10) NOT NULL DEFAULT '',
    sex VARCHAR(16) NOT NULL DEFAULT '',
    is_stable SMALLINT NOT NULL DEFAULT 0,
    orthanc_updated VARCHAR(32) NOT NULL DEFAULT '',    -- Orthanc's LastUpdate
    updated_at DATETIME NOT NULL,
    CONSTRAINT cached_studies_uid_unique UNIQUE (study_uid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX cached_studies_patient ON cached_studies (patient_orthanc_id, study_date);
CREATE INDEX cached_studies_referring ON cached_studies (referring_physician_key, patient_orthanc_id);
CREATE INDEX cached_studies_date ON cached_studies (study_date);

CREATE TABLE cached_series (
    orthanc_id CHAR(44) NOT NULL PRIMARY KEY,
    study_orthanc_id CHAR(44) NOT NULL,
    series_uid VARCHAR(64) NOT NULL,                    -- UI
    series_number INTEGER NULL,                         -- IS
    modality VARCHAR(16) NOT NULL DEFAULT '',           -- CS
    description VARCHAR(64) NOT NULL DEFAULT '',        -- LO
    body_part VARCHAR(16) NOT NULL DEFAULT '',          -- CS
    instance_count INTEGER NOT NULL DEFAULT 0,
    updated_at DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX cached_series_study ON cached_series (study_orthanc_id);

-- One row (id = 1): where the sync stands.
CREATE TABLE sync_state (
    id INTEGER NOT NULL PRIMARY KEY,
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_success_at DATETIME NULL,
    last_full_at DATETIME NULL,
    last_error VARCHAR(1000) NOT NULL DEFAULT '',
    last_error_at DATETIME NULL,
    studies_added INTEGER NOT NULL DEFAULT 0,
    studies_updated INTEGER NOT NULL DEFAULT 0,
    studies_removed INTEGER NOT NULL DEFAULT 0,
    last_duration_ms INTEGER NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
