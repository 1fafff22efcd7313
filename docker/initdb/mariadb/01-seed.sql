-- Seed data for the examples in conf/ on MariaDB/MySQL (run at the image's first start).
CREATE TABLE IF NOT EXISTS access_log (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    ts          DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    level       VARCHAR(10) NOT NULL,
    path        VARCHAR(200),
    status      INT
);
INSERT INTO access_log (level, path, status)
SELECT IF(seq % 50 = 0, 'error', 'info'), CONCAT('/api/items/', seq % 97),
       IF(seq % 50 = 0, 500, 200)
FROM seq_1_to_100;
