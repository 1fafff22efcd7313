-- Seed data for SQL Server; run by the mssql-init service with sqlcmd.
IF DB_ID('flbsql') IS NULL CREATE DATABASE flbsql;
GO
USE flbsql;
GO
IF OBJECT_ID('dbo.access_log') IS NULL
BEGIN
    CREATE TABLE dbo.access_log (
        id      BIGINT IDENTITY(1, 1) PRIMARY KEY,
        ts      DATETIME2(6) NOT NULL DEFAULT SYSUTCDATETIME(),
        level   NVARCHAR(10) NOT NULL,
        path    NVARCHAR(200),
        status  INT
    );
    INSERT INTO dbo.access_log (level, path, status)
    SELECT TOP (100)
        CASE WHEN n % 50 = 0 THEN 'error' ELSE 'info' END,
        CONCAT('/api/items/', n % 97),
        CASE WHEN n % 50 = 0 THEN 500 ELSE 200 END
    FROM (SELECT ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS n FROM sys.all_objects) AS s;
END
GO
