-- Shared steps: the period's dispensings, a compact monthly aggregate, who is whose peer.
-- Portable SQL: runs unchanged on DuckDB and Spark ({day_no} is the one engine-specific piece).

-- step: d view
SELECT
  {day_no} AS day_no,
  year(dispensed_on) * 12 + month(dispensed_on) - 1 AS month_no,
  patient_pseudonym AS patient,
  prescriber_code AS prescriber,
  CASE WHEN prescriber_has_personnummer THEN 1 ELSE 0 END AS has_pnr,
  prescriber_profession AS profession,
  prescriber_specialty AS specialty,
  workplace_code AS workplace,
  workplace_region AS region,
  workplace_care_type AS care_type,
  pharmacy_id AS pharmacy,
  atc,
  packs,
  CAST(ddd AS DECIMAL(18, 3)) AS ddd,
  CAST(benefit_cost_sek AS DECIMAL(18, 2)) AS cost
FROM dispensings
WHERE dispensed_on >= DATE '{from_date}' AND dispensed_on <= DATE '{to_date}'

-- step: agg table
SELECT prescriber, workplace, region, care_type, profession, specialty, has_pnr, atc, month_no,
  count(*) AS n, sum(ddd) AS ddd, sum(cost) AS cost
FROM d
GROUP BY prescriber, workplace, region, care_type, profession, specialty, has_pnr, atc, month_no

-- step: months table
SELECT month_no,
  CASE WHEN month_no > (SELECT max(month_no) FROM agg) - {recent_months} THEN 1 ELSE 0 END AS recent
FROM (SELECT DISTINCT month_no FROM agg) m

-- step: atc_group table
SELECT a.atc, w.group_code
FROM (SELECT DISTINCT atc FROM agg) a
JOIN watch w ON substr(a.atc, 1, length(w.prefix)) = w.prefix
GROUP BY a.atc, w.group_code

-- step: presc table
SELECT prescriber, profession, specialty, region, care_type, workplace AS main_workplace, has_pnr,
  profession || ' ' || coalesce(specialty, care_type) || ' i region ' || region AS peer_group
FROM (
  SELECT prescriber, profession, specialty, region, care_type, workplace, has_pnr,
    row_number() OVER (PARTITION BY prescriber ORDER BY n DESC, workplace, profession, specialty) AS rn
  FROM (
    SELECT p.prescriber, p.profession, p.specialty, p.region, p.care_type, p.workplace, p.n, q.has_pnr
    FROM (
      SELECT prescriber, profession, specialty, region, care_type, workplace, sum(n) AS n
      FROM agg GROUP BY prescriber, profession, specialty, region, care_type, workplace
    ) p
    JOIN (SELECT prescriber, min(has_pnr) AS has_pnr FROM agg GROUP BY prescriber) q
      ON p.prescriber = q.prescriber
  ) x
) ranked
WHERE rn = 1

-- step: ent table
SELECT 'prescriber' AS entity_kind, prescriber AS entity_code, peer_group FROM presc
UNION ALL
SELECT 'workplace' AS entity_kind, workplace AS entity_code,
  min(care_type) || ' i region ' || min(region) AS peer_group
FROM agg GROUP BY workplace

-- step: aggw table
SELECT a.prescriber, a.workplace, g.group_code, a.month_no, a.n, a.ddd, a.cost
FROM agg a JOIN atc_group g ON a.atc = g.atc
