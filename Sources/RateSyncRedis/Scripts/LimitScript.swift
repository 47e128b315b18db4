import RateSync

/// The Lua script that decides every limiter of a route in one atomic call, on Redis's own clock.
///
/// Keys follow rate-sync's layout, so a Python service using rate-sync against the same Redis
/// shares each budget:
///   `<prefix>:<limiter>:<identifier>:rate`        token bucket: GCRA's TAT minus one interval,
///                                                 which is rate-sync's "last admission time"
///                                                 exactly when burst = 1
///   `<prefix>:<limiter>:<identifier>:window`      sliding window: a sorted set of admissions,
///                                                 score = Unix seconds, TTL window + 60
///   `<prefix>:<limiter>:<identifier>:concurrent`  max_concurrent: requests in flight
///
/// One call decides one or more groups (the requests that met in one event-loop tick), in order;
/// within a group, phase one evaluates every limiter without consuming anything and phase two, only
/// when all admit, consumes each one's budget. A key that several groups of a call check (a
/// `global` limiter, or one busy identity) is read once: a token bucket is written once, after the
/// last group, with what the groups left in turn; a sliding window is pruned and counted once, gets
/// a member per admission and its lifetime once; a concurrency counter is reclaimed and read once,
/// and its lifetime and its leases' set once (each slot taken still raises it and adds its lease).
/// Each group still sees the ones before it, and Redis runs two to four commands for the key per
/// call instead of per group. Each group runs under `pcall`: a key that holds something else
/// (another type, a corrupt value) fails its own group, whose fields then read allowed = -1, and
/// every other group is decided as usual. Phase one reads every key with a command of its type, so
/// such a group fails before it writes anything (or moves a key another group then reads). The
/// reply is all integers (Redis truncates Lua numbers, and integers cost Lua no formatting):
/// Redis's TIME (seconds, microseconds), then five fields per limiter (allowed, limit, remaining,
/// retry-after and reset in microseconds, rounded up). An admission that waits for its slot (a
/// limiter with `timeout`) reads allowed with its wait in the retry-after field.
///
/// Waiting: a check may wait up to its `maxWait` seconds for room (a shadow never waits). A group
/// whose checks all admit, some of them only after a wait, goes through after the longest wait
/// (in whole microseconds), and every admission of the group is logged at that time: the TAT
/// moves as if the request had arrived then, and the window's entries are scored then (ahead of
/// now: they count as used until they leave the window), named `<time in µs>:<token>:<group>:<check>`
/// so that the gateway can remove them if its client leaves first.
///
/// Each check carries its cost (units of budget: the TAT moves `cost` intervals, the window gets
/// `cost` members) and a shadow flag: a shadow check that denies does not stop the group, and
/// commits its own budget only when it admits and the group does.
///
/// The `#!lua` line (Redis 7) declares a script that writes, so Redis refuses it up front when
/// it is out of memory, instead of letting it through because its first write frees memory.
enum LimitScript {
    static let source = """
        #!lua
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        local token = ARGV[1]
        local groups = tonumber(ARGV[2])
        local reply = {tonumber(t[1]), tonumber(t[2])}
        -- token buckets this call has read or moved (key -> stored value, false when absent), and
        -- the interval of each one it moved: a key that several groups check is read once, and
        -- written once after the last group (the keys of `intervals` are the ones to write)
        local tats, intervals = {}, {}
        -- sliding windows this call has pruned (key -> members), and how long each one it added to
        -- must live: pruned and counted once, their lifetime set once after the last group
        local counts, lives = {}, {}
        -- concurrency counters this call has read (key -> requests in flight), and those it raised
        -- (key -> its leases): reclaimed and read once, their lifetimes set once after the last group
        local flights, raised = {}, {}
        -- the group's fields go straight into the reply, after `base`
        local function decide(g, size, arg, keyIndex, base)
          local commits = {}
          local all = true
          -- the group goes through when its slowest waiting limiter has room: every limiter's
          -- admission is logged at that time (whole microseconds, so the caller can name it)
          local group_wait = 0
          for i = 1, size do
            local kind = ARGV[arg + 1]
            local a = tonumber(ARGV[arg + 2])
            local b = tonumber(ARGV[arg + 3])
            local cap = tonumber(ARGV[arg + 4])
            local cost = tonumber(ARGV[arg + 5])
            local shadow = ARGV[arg + 6] == '1'
            local lease = tonumber(ARGV[arg + 7])
            local holder = ARGV[arg + 8]
            local max_wait = shadow and 0 or tonumber(ARGV[arg + 9])
            arg = arg + 9
            local key = KEYS[keyIndex + 1]
            local slots = KEYS[keyIndex + 2]
            local leases = KEYS[keyIndex + 3]
            keyIndex = keyIndex + 3
            local allowed, limit, remaining, retry, reset = 1, 0, 0, 0, 0
            local wait = 0
            local commit = nil
            if kind == 't' then
              -- a: emission interval (s), b: burst
              local stored = tats[key]
              if stored == nil then
                local text = redis.call('GET', key)
                stored = false
                if text then
                  stored = tonumber(text)
                  if not stored then error('not a number: ' .. key) end
                end
                tats[key] = stored
              end
              local tat = now
              if stored then tat = math.max(stored + a, now) end
              local new_tat = tat + cost * a
              local allow_at = new_tat - b * a
              limit = b
              if allow_at - now > 1e-9 and (allow_at - now > max_wait or cost > b) then
                allowed, remaining, retry, reset = 0, 0, allow_at - now, tat - now
              else
                if allow_at - now > 1e-9 then
                  wait, remaining = allow_at - now, 0
                else
                  remaining = math.min(b - cost, math.floor((now - allow_at) / a + 1e-9))
                end
                reset = new_tat - now
                commit = {'t', key, new_tat, cost * a, a}
              end
            elseif kind == 's' then
              -- a: limit, b: window (s)
              local used = counts[key]
              if not used then
                redis.call('ZREMRANGEBYSCORE', key, '-inf', now - b)
                used = redis.call('ZCARD', key)
                counts[key] = used
              end
              limit = a
              if used + cost <= a then
                remaining, reset = a - used - cost, b
                commit = {'s', key, b, cost, i}
              else
                allowed, remaining = 0, 0
                local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
                if cost <= a and used > 0 then
                  -- room for `cost` more once the oldest (used + cost - a) have left the window
                  local freed = redis.call('ZRANGE', key, used + cost - a - 1, used + cost - a - 1, 'WITHSCORES')
                  retry = math.max(0, tonumber(freed[2]) + b - now)
                  reset = math.max(0, tonumber(newest[2]) + b - now)
                  if retry <= max_wait then
                    -- logged at the time it goes through, ahead of now
                    allowed, wait, retry = 1, retry, 0
                    reset = math.max(wait, tonumber(newest[2]) - now) + b
                    commit = {'s', key, b, cost, i}
                  end
                else
                  retry, reset = b, b
                end
              end
            end
            local take_slot = false
            if cap > 0 then
              local in_flight = flights[slots]
              if not in_flight then
                -- slots whose leases ran out belong to a gateway that died holding them
                local expired = redis.call('ZCOUNT', leases, '-inf', now)
                if expired > 0 then
                  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
                  local held = tonumber(redis.call('GET', slots) or '0')
                  if math.min(held, expired) > 0 then redis.call('DECRBY', slots, math.min(held, expired)) end
                end
                in_flight = tonumber(redis.call('GET', slots) or '0')
                flights[slots] = in_flight
              end
              if in_flight >= cap then
                allowed, limit, remaining, retry, reset = 0, cap, 0, 1, 1
              else
                if kind == 'n' then limit, remaining = cap, cap - in_flight - 1 end
                take_slot = allowed == 1
              end
            end
            if allowed == 1 then
              if commit then commits[#commits + 1] = commit end
              if take_slot then commits[#commits + 1] = {'c', slots, leases, lease, holder} end
              if not shadow and wait > group_wait then group_wait = wait end
            elseif not shadow then
              all = false
            end
            reply[#reply + 1] = allowed
            reply[#reply + 1] = limit
            reply[#reply + 1] = remaining
            reply[#reply + 1] = math.ceil(retry * 1000000)
            reply[#reply + 1] = math.ceil(reset * 1000000)
          end
          local wait_us = math.ceil(group_wait * 1000000)
          local at = now + wait_us / 1000000
          if all and wait_us > 0 then
            -- an admission that waits says so in its retry field (its group's wait)
            for i = 1, size do
              if reply[base + i * 5 - 4] == 1 then reply[base + i * 5 - 1] = wait_us end
            end
          end
          if all then
            for i, c in ipairs(commits) do
              if c[1] == 't' then
                local new_tat = math.max(c[3], at + c[4])
                tats[c[2]], intervals[c[2]] = new_tat - c[5], c[5]
              elseif c[1] == 's' then
                local member
                if wait_us > 0 then
                  member = string.format('%d', t[1] * 1000000 + t[2] + wait_us) .. ':' .. token .. ':' .. g .. ':' .. c[5]
                else
                  member = string.format('%.6f', now) .. ':' .. token .. ':' .. g .. ':' .. i
                end
                if c[4] == 1 then
                  redis.call('ZADD', c[2], at, member)
                else
                  -- in slices: unpack is bounded by Lua's C stack
                  local unit = 1
                  while unit <= c[4] do
                    local added = {}
                    for u = unit, math.min(c[4], unit + 499) do
                      added[#added + 1] = at
                      added[#added + 1] = member .. ':' .. u
                    end
                    redis.call('ZADD', c[2], unpack(added))
                    unit = unit + 500
                  end
                end
                counts[c[2]] = counts[c[2]] + c[4]
                lives[c[2]] = math.max(lives[c[2]] or 0, math.ceil(c[3] + wait_us / 1000000) + 60)
              else
                redis.call('INCR', c[2])
                redis.call('ZADD', c[3], now + c[4], c[5])
                flights[c[2]] = flights[c[2]] + 1
                raised[c[2]] = c[3]
              end
            end
          end
        end
        local arg = 2 + groups
        local keyIndex = 0
        for g = 1, groups do
          local size = tonumber(ARGV[2 + g])
          local base = #reply
          if not pcall(decide, g, size, arg, keyIndex, base) then
            -- what the group wrote before it failed gives way to its failure
            for i = #reply, base + 1, -1 do reply[i] = nil end
            for i = 1, size do
              reply[#reply + 1] = -1
              reply[#reply + 1] = 0
              reply[#reply + 1] = 0
              reply[#reply + 1] = 0
              reply[#reply + 1] = 0
            end
          end
          arg = arg + size * 9
          keyIndex = keyIndex + size * 3
        end
        -- distinct keys, so the order these run in changes nothing
        for key, interval in pairs(intervals) do
          local stored = tats[key]
          redis.call('SET', key, string.format('%.6f', stored), 'PX', math.ceil((stored + interval - now) * 1000) + 1000)
        end
        for key, life in pairs(lives) do redis.call('EXPIRE', key, life) end
        for counter, leases in pairs(raised) do
          redis.call('EXPIRE', counter, 3600)
          redis.call('EXPIRE', leases, 3600)
        end
        return reply
        """

    /// The same script for Redis Cluster calls that span slots: one call per node for the groups
    /// of every slot the node serves. Keys cannot be declared across slots, so they come first
    /// in ARGV (`ARGV[1]` is their count) and the script runs with `allow-cross-slot-keys`.
    ///
    /// Exact all the same: Redis checks every command a script runs against its slot's owner
    /// and migration state, so a key this node does not serve now (the slot moved, or is being
    /// migrated and the key has left, or is being imported without `ASKING`) raises an error
    /// instead of being read or created here. Phase one touches every key a group writes, so
    /// such a group fails, under its `pcall`, before it writes anything (at most it pruned
    /// expired entries of a key that is here), and reads allowed = -1; the caller then sends it
    /// alone with its keys declared, which `ASK`, `MOVED` and `TRYAGAIN` route exactly.
    static let crossSlotSource: String = {
        let body = source.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)[1]
        return """
            #!lua flags=allow-cross-slot-keys
            local KEYS, ARGV = {}, ARGV
            do
              local count = tonumber(ARGV[1])
              local keys, rest = {}, {}
              for i = 1, count do keys[i] = ARGV[1 + i] end
              for i = count + 2, #ARGV do rest[#rest + 1] = ARGV[i] end
              KEYS, ARGV = keys, rest
            end

            """ + body
    }()

    /// Extends a held slot's lease (KEYS: the counter, its leases; ARGV: the holder, the lease
    /// in seconds), on Redis's clock; 0 when the lease is gone (it ran out and was reclaimed).
    static let renewSource = """
        #!lua
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
        redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[2]), ARGV[1])
        redis.call('EXPIRE', KEYS[2], 3600)
        redis.call('EXPIRE', KEYS[1], 3600)
        return 1
        """

    /// The lease holder of the `check`-th check of the `group`-th group of a call (both from 1).
    static func holder(token: String, group: Int, check: Int) -> String {
        "\(token):\(group):\(check)"
    }

    /// Keys and arguments for one call deciding several groups of checks (the requests of one
    /// event-loop tick): each group is decided all-or-nothing, in order.
    /// - Parameter hashTagged: Redis Cluster's layout, `<prefix>:<limiter>:{<identifier>}:...`,
    ///   so that every key of one identifier lives in one slot.
    static func keysAndArguments(
        groups: [[LimitCheck]],
        keyPrefix: String,
        uniqueToken: String,
        hashTagged: Bool = false
    ) -> (keys: [String], arguments: [String]) {
        let total = groups.reduce(0) { $0 + $1.count }
        var keys: [String] = []
        var arguments: [String] = [uniqueToken, String(groups.count)]
        keys.reserveCapacity(total * 3)
        arguments.reserveCapacity(2 + groups.count + total * 9)
        for group in groups { arguments.append(String(group.count)) }
        for (groupIndex, group) in groups.enumerated() {
            for (checkIndex, check) in group.enumerated() {
                let cap = check.limiter.maxConcurrent.map(String.init) ?? "0"
                let key: String
                switch check.limiter.algorithm {
                case .tokenBucket(let rule?):
                    key = Self.key(check, keyPrefix: keyPrefix, hashTagged: hashTagged, suffix: ":rate")
                    arguments += ["t", String(rule.emissionInterval), String(rule.burst), cap]
                case .tokenBucket(nil):
                    key = Self.key(check, keyPrefix: keyPrefix, hashTagged: hashTagged, suffix: ":rate")
                    arguments += ["n", "0", "0", cap]
                case .slidingWindow(let rule):
                    key = Self.key(check, keyPrefix: keyPrefix, hashTagged: hashTagged, suffix: ":window")
                    arguments += ["s", String(rule.limit), String(rule.windowSeconds), cap]
                }
                keys.append(key)
                arguments.append(check.cost == 1 ? "1" : String(check.cost))
                arguments.append(check.shadow ? "1" : "0")
                if check.limiter.maxConcurrent != nil {
                    arguments.append(String(check.limiter.leaseSeconds))
                    arguments.append(holder(token: uniqueToken, group: groupIndex + 1, check: checkIndex + 1))
                } else {
                    arguments.append("0")
                    arguments.append("")
                }
                arguments.append(check.maxWait > 0 ? String(check.maxWait) : "0")
                if check.limiter.maxConcurrent != nil {
                    let slot = slotKeys(check, keyPrefix: keyPrefix, hashTagged: hashTagged)
                    keys.append(slot.counter)
                    keys.append(slot.leases)
                } else {
                    // A check without a cap never touches the counter and leases: their places
                    // hold its own key again, so that only keys the script uses are declared (in
                    // a cluster, a declared key that does not exist makes a slot in mid-migration
                    // answer TRYAGAIN until it has moved).
                    keys.append(key)
                    keys.append(key)
                }
            }
        }
        return (keys, arguments)
    }

    /// The slot of every key of `check` (see `clusterBase`), without building a key: the tag is
    /// the identifier, unless a `}` in it ends the tag early.
    static func clusterSlot(_ check: LimitCheck, keyPrefix: String) -> Int {
        ClusterSlot.of(hashTag: identifierInKey(of: check)) ?? ClusterSlot.of(clusterBase(check, keyPrefix: keyPrefix))
    }

    /// `<prefix>:<limiter>:{<identifier>}`: the identifier is the hash tag (an empty one, which
    /// would not be a tag and would scatter the keys of one request over slots, is `-`).
    static func clusterBase(_ check: LimitCheck, keyPrefix: String) -> String {
        key(check, keyPrefix: keyPrefix, hashTagged: true)
    }

    /// `<prefix>:<limiter>:<identifier><suffix>` in rate-sync's layout, or in a cluster's
    /// (`clusterBase`, then the suffix), built in one allocation.
    static func key(_ check: LimitCheck, keyPrefix: String, hashTagged: Bool, suffix: String = "") -> String {
        var key = String()
        guard hashTagged else {
            key.reserveCapacity(keyPrefix.utf8.count + check.key.utf8.count + suffix.utf8.count + 1)
            key += keyPrefix
            key += ":"
            key += check.key
            key += suffix
            return key
        }
        let identifier = identifierInKey(of: check)
        key.reserveCapacity(keyPrefix.utf8.count + check.limiter.id.utf8.count + identifier.utf8.count + suffix.utf8.count + 5)
        key += keyPrefix
        key += ":"
        key += check.limiter.id
        key += ":{"
        if identifier.isEmpty { key += "-" } else { key += identifier }
        key += "}"
        key += suffix
        return key
    }

    /// The identifier in a check's key (`<limiter>:<identifier>`), cut by bytes: cut by
    /// Characters, an identifier that opens with a combining mark would lose it to the colon's
    /// Character, and share its keys with the identifier without it.
    private static func identifierInKey(of check: LimitCheck) -> Substring {
        let bytes = check.key.utf8
        let start = bytes.index(bytes.startIndex, offsetBy: check.limiter.id.utf8.count + 1, limitedBy: bytes.endIndex) ?? bytes.endIndex
        return Substring(bytes[start...])
    }

    /// Reads the script's reply into one decision per check; nil for a check whose group failed
    /// on its keys.
    static func decisions(from reply: RedisValue, count: Int) throws -> [Decision?] {
        guard case .array(let items) = reply, items.count == 2 + count * 5,
            let seconds = items[0].integer, let microseconds = items[1].integer
        else {
            throw RedisProtocolError("unexpected reply from the limit script")
        }
        let now = Double(seconds) + Double(microseconds) / 1e6
        var decisions: [Decision?] = []
        decisions.reserveCapacity(count)
        for index in 0..<count {
            let base = 2 + index * 5
            guard let allowed = items[base].integer, let limit = items[base + 1].integer,
                let remaining = items[base + 2].integer, let retry = items[base + 3].integer,
                let reset = items[base + 4].integer
            else {
                throw RedisProtocolError("unexpected field in the limit script's reply")
            }
            guard allowed >= 0 else {
                decisions.append(nil)
                continue
            }
            var decision = Decision(
                allowed: allowed == 1,
                limit: limit,
                remaining: remaining,
                retryAfter: allowed == 1 ? 0 : Double(retry) / 1e6,
                resetAfter: Double(reset) / 1e6,
                now: now
            )
            if allowed == 1 && retry > 0 {
                decision.delay = Double(retry) / 1e6
                // The window entries' name (see the script): its time, in µs, names it.
                decision.reservation = String(seconds * 1_000_000 + microseconds + retry)
            }
            decisions.append(decision)
        }
        return decisions
    }

    /// The key and `ReturnQueue` arguments that give back `check`'s waiting admission; nil when
    /// it holds none.
    static func giveBackKeyAndArguments(_ check: LimitCheck, keyPrefix: String, hashTagged: Bool) -> (key: String, arguments: [String])? {
        guard let reservation = check.reservation else { return nil }
        switch check.limiter.algorithm {
        case .tokenBucket(let rule?):
            return (key(check, keyPrefix: keyPrefix, hashTagged: hashTagged, suffix: ":rate"), ["t", String(rule.emissionInterval), String(check.cost), ""])
        case .slidingWindow:
            return (key(check, keyPrefix: keyPrefix, hashTagged: hashTagged, suffix: ":window"), ["s", "", String(check.cost), reservation])
        case .tokenBucket(nil):
            return nil
        }
    }

    /// The script's flat decisions cut back into one outcome per group: a group with a check the
    /// script could not read (a key holding another type, or a corrupt value) fails alone, and
    /// as its own failure, not the store's.
    /// A waiting admission's reservation is completed with the call's `token`, its group and its
    /// check, as the script names its window entries.
    static func outcomes(_ decisions: [Decision?], groups: [[LimitCheck]], storeID: String, token: String) -> [Result<[Decision], StoreFailure>] {
        var offset = 0
        return groups.enumerated().map { groupIndex, group in
            let next = offset + group.count
            defer { offset = next }
            var decided = decisions[offset..<next].compactMap { $0 }
            guard decided.count == group.count else {
                return .failure(
                    StoreFailure(storeID: storeID, reason: "a limiter key holds a value of another type or a corrupt one", affectsHealth: false)
                )
            }
            for index in decided.indices {
                if let time = decided[index].reservation {
                    decided[index].reservation = "\(time):\(token):\(groupIndex + 1):\(index + 1)"
                }
            }
            return .success(decided)
        }
    }
}
