-- many_prescribers: per patient and watched group, the 90-day window (from each dispensing day)
-- with the most distinct prescribers and pharmacies; the value is the smaller of the two, so
-- both must be high. Peers: all patients with the group in the period (median usually 1).

-- step: pw table
SELECT DISTINCT d.patient, g.group_code, d.day_no, d.prescriber, d.pharmacy
FROM d JOIN atc_group g ON d.atc = g.atc

-- step: pw_bound table
SELECT patient, group_code,
  least(count(DISTINCT prescriber), count(DISTINCT pharmacy)) AS bound
FROM pw GROUP BY patient, group_code

-- step: pw_windows view
SELECT a.patient, a.group_code, a.day_no AS anchor,
  count(DISTINCT b.prescriber) AS n_prescribers, count(DISTINCT b.pharmacy) AS n_pharmacies
FROM (
  SELECT DISTINCT p.patient, p.group_code, p.day_no
  FROM pw p JOIN pw_bound c ON p.patient = c.patient AND p.group_code = c.group_code
  WHERE c.bound >= 2
) a
JOIN pw b ON a.patient = b.patient AND a.group_code = b.group_code
  AND b.day_no >= a.day_no AND b.day_no <= a.day_no + {window_days} - 1
GROUP BY a.patient, a.group_code, a.day_no

-- step: mp_values table
SELECT c.patient, c.group_code,
  CAST(coalesce(w.value, c.bound) AS DOUBLE) AS value,
  CAST(coalesce(w.n_prescribers, c.bound) AS DOUBLE) AS n_prescribers,
  CAST(coalesce(w.n_pharmacies, c.bound) AS DOUBLE) AS n_pharmacies,
  CAST(w.anchor AS DOUBLE) AS anchor
FROM pw_bound c
LEFT JOIN (
  SELECT patient, group_code, anchor, n_prescribers, n_pharmacies,
    least(n_prescribers, n_pharmacies) AS value,
    row_number() OVER (PARTITION BY patient, group_code
      ORDER BY least(n_prescribers, n_pharmacies) DESC, n_prescribers + n_pharmacies DESC, anchor) AS rn
  FROM pw_windows
) w ON c.patient = w.patient AND c.group_code = w.group_code AND w.rn = 1

-- step: mp_stats table
SELECT group_code, count(*) AS peer_n,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med,
  percentile_cont(0.25) WITHIN GROUP (ORDER BY value) AS q1,
  percentile_cont(0.75) WITHIN GROUP (ORDER BY value) AS q3,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY value) AS p99
FROM mp_values GROUP BY group_code

-- step: mp_mad view
SELECT s.group_code, percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(v.value - s.med)) AS mad
FROM mp_values v JOIN mp_stats s ON v.group_code = s.group_code
GROUP BY s.group_code

-- step: flags_many_prescribers view
SELECT 'many_prescribers' AS indicator, 'patient' AS entity_kind, v.patient AS entity_code,
  v.group_code AS subject, 'förskrivare och apotek' AS measure, v.group_code AS peer_group,
  v.value, s.peer_n, s.med, s.p99,
  (v.value - s.med) / greatest(1.4826 * m.mad, (s.q3 - s.q1) / 1.349, 1.0) AS score,
  v.n_prescribers AS aux1, v.n_pharmacies AS aux2, v.anchor AS aux3
FROM mp_values v
JOIN mp_stats s ON v.group_code = s.group_code
JOIN mp_mad m ON v.group_code = m.group_code
WHERE s.peer_n >= {min_peers}
  AND (v.value - s.med) / greatest(1.4826 * m.mad, (s.q3 - s.q1) / 1.349, 1.0) >= {min_score}
