-- Fold step, first insert (clickhouse/session_fold.py): the new session_state entries of the sessions
-- the log rows inserted in [fold_lo, fold_hi) change, each with the state it had before.
SELECT key, toDateTime({fold_hi:UInt32}, 'UTC') AS version,
       new_start AS start_hour, new_furthest AS furthest, new_categories AS categories, new_offers AS offers,
       had_old AS had_before, old_start AS before_start_hour, old_furthest AS before_furthest,
       old_categories AS before_categories, old_offers AS before_offers
FROM ({session_changes})
