import RateSync

/// The SQL of the Postgres store: rate-sync 0.4.2's tables, and the function that decides a
/// group of checks in one statement.
///
/// rate-sync's Postgres engine keeps, per `<limiter>:<identifier>` (its `group_id`):
///   `<schema>.<table>`         one row: `last_acquisition_at` (token bucket: one admission per
///                              interval, less `timing_margin_ms`), `concurrent_count`
///                              (`max_concurrent`), `version` (bumped by every change: rate-sync
///                              updates optimistically, on the version it read)
///   `<schema>.<table>_window`  sliding window: a row per admission, `timestamp_at`
/// and serialises on the state row (`SELECT ... FOR UPDATE`). The gateway does the same, so the
/// two share every budget.
struct PostgresSchema {
    let state: String
    let window: String
    let tableName: String

    init(_ settings: PostgresStoreSettings) {
        // Plain identifiers only (checked with the config), unquoted as rate-sync writes them.
        state = "\(settings.schemaName).\(settings.tableName)"
        window = "\(settings.schemaName).\(settings.tableName)_window"
        tableName = settings.tableName
    }

    /// `auto_create = true`: rate-sync's own DDL, statement for statement.
    var createTables: [String] {
        [
            """
            CREATE TABLE IF NOT EXISTS \(state) (
                group_id VARCHAR(255) PRIMARY KEY,
                last_acquisition_at TIMESTAMPTZ NOT NULL,
                concurrent_count INTEGER NOT NULL DEFAULT 0,
                version BIGINT NOT NULL DEFAULT 1
            )
            """,
            "CREATE INDEX IF NOT EXISTS idx_\(tableName)_group ON \(state)(group_id)",
            """
            CREATE TABLE IF NOT EXISTS \(window) (
                id BIGSERIAL PRIMARY KEY,
                group_id VARCHAR(255) NOT NULL,
                timestamp_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
            )
            """,
            "CREATE INDEX IF NOT EXISTS idx_\(tableName)_window_group_ts ON \(window)(group_id, timestamp_at)",
        ]
    }

    /// Decides a group of checks all or nothing, on the server's clock, in one statement: a
    /// function in the connection's own temporary schema (created when the connection opens; it
    /// needs no privilege beyond a session's TEMP, and no two gateways' versions can clash).
    ///
    /// Arguments, one array element per check: kind (`t` token bucket, `s` sliding window, `n`
    /// concurrency only), group_id, a (interval seconds, or the window's limit), b (window
    /// seconds), cap (`max_concurrent`, 0 for none), cost, shadow, the longest wait allowed; then
    /// the timing margin in seconds.
    ///
    /// The reply is one float8 array: now (Unix seconds), the group's wait, then per check
    /// allowed (1/0), limit, remaining, retry-after and reset in seconds.
    ///
    /// Every state row of the group is made to exist, then locked in group_id order (two
    /// gateways' groups never deadlock; rate-sync locks one row at a time). Phase one evaluates
    /// without consuming; phase two, only when every enforced check admits, consumes each one's
    /// budget at the group's time (now, or its slowest waiting check's slot).
    var checkFunction: String {
        """
        CREATE OR REPLACE FUNCTION pg_temp.ratesync_check(
            kinds text[], ids text[], a float8[], b float8[], caps int[], costs int[], shadows bool[],
            waits float8[], margin float8
        ) RETURNS float8[] LANGUAGE plpgsql AS $ratesync$
        DECLARE
            n int := array_length(ids, 1);
            now_s float8 := extract(epoch FROM clock_timestamp());
            allowed int[] := array_fill(0, ARRAY[n]);
            lim float8[] := array_fill(0::float8, ARRAY[n]);
            rem float8[] := array_fill(0::float8, ARRAY[n]);
            retry float8[] := array_fill(0::float8, ARRAY[n]);
            reset float8[] := array_fill(0::float8, ARRAY[n]);
            group_wait float8 := 0;
            all_admit bool := true;
            reply float8[];
            last_at float8;
            held int;
            used int;
            freed float8;
            newest float8;
            ok bool;
            w float8;
            at float8;
        BEGIN
            INSERT INTO \(state) (group_id, last_acquisition_at, concurrent_count, version)
                SELECT g, to_timestamp(0), 0, 1 FROM (SELECT DISTINCT unnest(ids) AS g) AS distinct_ids ORDER BY g
                ON CONFLICT (group_id) DO NOTHING;
            PERFORM 1 FROM \(state) WHERE group_id = ANY(ids) ORDER BY group_id FOR UPDATE;
            FOR i IN 1..n LOOP
                ok := true;
                w := 0;
                SELECT extract(epoch FROM last_acquisition_at), concurrent_count INTO last_at, held
                    FROM \(state) WHERE group_id = ids[i];
                IF kinds[i] = 't' THEN
                    -- rate-sync's spacing: admitted once the interval (less the margin) has passed
                    lim[i] := 1;
                    w := last_at + a[i] - margin - now_s;
                    IF w > 1e-9 THEN
                        IF shadows[i] OR w > waits[i] THEN
                            ok := false;
                            retry[i] := w;
                            reset[i] := w;
                            w := 0;
                        END IF;
                    ELSE
                        w := 0;
                    END IF;
                ELSIF kinds[i] = 's' THEN
                    lim[i] := a[i];
                    DELETE FROM \(window) WHERE group_id = ids[i] AND timestamp_at < to_timestamp(now_s - b[i]);
                    SELECT count(*), extract(epoch FROM max(timestamp_at)) INTO used, newest FROM \(window) WHERE group_id = ids[i];
                    IF used + costs[i] <= a[i] THEN
                        rem[i] := a[i] - used - costs[i];
                        reset[i] := b[i];
                    ELSE
                        ok := false;
                        IF costs[i] <= a[i] AND used > 0 THEN
                            -- room for cost more once the oldest (used + cost - a) have left
                            SELECT extract(epoch FROM timestamp_at) INTO freed FROM \(window)
                                WHERE group_id = ids[i] ORDER BY timestamp_at OFFSET used + costs[i] - a[i] - 1 LIMIT 1;
                            retry[i] := greatest(0, freed + b[i] - now_s);
                            reset[i] := greatest(0, newest + b[i] - now_s);
                            IF NOT shadows[i] AND retry[i] <= waits[i] THEN
                                ok := true;
                                w := retry[i];
                                retry[i] := 0;
                                reset[i] := greatest(w, newest - now_s) + b[i];
                            END IF;
                        ELSE
                            retry[i] := b[i];
                            reset[i] := b[i];
                        END IF;
                    END IF;
                END IF;
                IF ok AND caps[i] > 0 THEN
                    IF held >= caps[i] THEN
                        ok := false;
                        w := 0;
                        lim[i] := caps[i];
                        rem[i] := 0;
                        retry[i] := 1;
                        reset[i] := 1;
                    ELSIF kinds[i] = 'n' THEN
                        lim[i] := caps[i];
                        rem[i] := caps[i] - held - 1;
                    END IF;
                END IF;
                IF ok THEN
                    allowed[i] := 1;
                    IF NOT shadows[i] AND w > group_wait THEN group_wait := w; END IF;
                ELSIF NOT shadows[i] THEN
                    all_admit := false;
                END IF;
            END LOOP;
            group_wait := ceil(group_wait * 1000000) / 1000000;
            at := now_s + group_wait;
            IF all_admit THEN
                FOR i IN 1..n LOOP
                    CONTINUE WHEN allowed[i] = 0;
                    IF kinds[i] = 't' THEN
                        -- a request of cost c is c admissions, one interval apart
                        UPDATE \(state) SET last_acquisition_at = to_timestamp(at + (costs[i] - 1) * a[i]),
                            concurrent_count = concurrent_count + (CASE WHEN caps[i] > 0 THEN 1 ELSE 0 END),
                            version = version + 1
                            WHERE group_id = ids[i];
                        reset[i] := greatest(0, costs[i] * a[i] - margin) + group_wait;
                    ELSE
                        IF kinds[i] = 's' THEN
                            INSERT INTO \(window) (group_id, timestamp_at)
                                SELECT ids[i], to_timestamp(at) FROM generate_series(1, costs[i]);
                        END IF;
                        IF caps[i] > 0 THEN
                            UPDATE \(state) SET concurrent_count = concurrent_count + 1, version = version + 1
                                WHERE group_id = ids[i];
                        END IF;
                    END IF;
                END LOOP;
            ELSE
                group_wait := 0;
            END IF;
            reply := ARRAY[now_s, group_wait];
            FOR i IN 1..n LOOP
                reply := reply || ARRAY[allowed[i]::float8, lim[i], rem[i], retry[i], reset[i]];
            END LOOP;
            RETURN reply;
        END
        $ratesync$
        """
    }

    /// Gives back one `max_concurrent` slot, never below zero (rate-sync's own release).
    var releaseStatement: String {
        "UPDATE \(state) SET concurrent_count = GREATEST(concurrent_count - 1, 0), version = version + 1 WHERE group_id = $1"
    }

    /// Moves a token bucket's last admission back `$2` seconds (a waiting admission given back).
    var moveBackStatement: String {
        "UPDATE \(state) SET last_acquisition_at = last_acquisition_at - make_interval(secs => $2), version = version + 1 WHERE group_id = $1"
    }

    /// Removes `$3` window entries logged at `$2` (a waiting admission given back).
    var removeEntriesStatement: String {
        "DELETE FROM \(window) WHERE id IN (SELECT id FROM \(window) WHERE group_id = $1 AND timestamp_at = to_timestamp($2) LIMIT $3)"
    }
}
