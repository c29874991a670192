import Foundation
import FunnelBase
import FunnelConfig
import FunnelEvents

/// The counting rules of DESIGN.md §3 and §7, as one function from an event log and a
/// configuration to per-user sufficient statistics and data-quality counters.
///
/// Every rule is local to one user (bots, viewability, dedup, clicks, conversions, assignment), so
/// users are processed independently, in parallel, and the results merged in user order.
public enum Attributor {
    /// Runs the rules.
    public static func run(_ log: EventLog, config: FunnelConfig) throws(AttributionError) -> Attribution {
        try run(log, config: config, windows: []).base
    }

    /// Runs the rules under the configured conversion window and, in the same pass over each
    /// user's events, under each of `windows` (hours): the per-user sums of each (the window runs
    /// carry users only, no position or item counts).
    public static func run(_ log: EventLog, config: FunnelConfig, windows: [Double]) throws(AttributionError) -> (base: Attribution, windows: [Attribution]) {
        let experiment = try chooseExperiment(log, config: config)
        let windowRules = windows.map { w -> Rules in
            var c = config
            c.conversionWindowHours = w
            return Rules(config: c, experiment: experiment)
        }
        let (results, windowResults) = runWorkers(log, Rules(config: config, experiment: experiment), collect: .none, windows: windowRules)
        let base = assemble(results.values(), log: log, config: config, experiment: experiment, order: nil)
        let others = windowResults.map { assemble($0.values(), log: log, config: config, experiment: experiment, order: base.variantLabels) }
        return (base, others)
    }

    /// An attribution from the workers' outputs in user order. Variants in order of first
    /// appearance, control first (or in `order`, the base run's, for a window run).
    static func assemble(_ parts: [PartOutput], log: EventLog, config: FunnelConfig, experiment: String, order: [Int32]?) -> Attribution {
        var dq = DataQuality()
        dq.eventsRead = log.counters.eventsRead
        dq.quarantined = log.counters.quarantined
        dq.duplicateEvents = log.counters.duplicateEvents
        var variantOfLabel: [Int32: Int] = [:]
        var labels: [Int32] = order ?? []
        for (v, l) in labels.enumerated() { variantOfLabel[l] = v }
        if order == nil, let c = log.labels.lookup(config.control) {
            for part in parts where part.users.contains(where: { $0.variantLabel == c }) {
                variantOfLabel[c] = 0; labels.append(c); break
            }
        }
        var users: [AnalysedUser] = []
        users.reserveCapacity(parts.reduce(0) { $0 + $1.users.count })
        for part in parts {
            dq.add(part.dataQuality)
            for u in part.users {
                let v: Int
                if let known = variantOfLabel[u.variantLabel] { v = known } else {
                    v = labels.count; variantOfLabel[u.variantLabel] = v; labels.append(u.variantLabel)
                }
                users.append(AnalysedUser(user: u.user, variant: v, firstExposure: u.firstExposure, segments: u.segments, stats: u.stats, pre: u.pre))
            }
        }
        var positions = [[Int32: PositionCounts]](repeating: [:], count: labels.count)
        var items = [[Int32: ItemCounts]](repeating: [:], count: labels.count)
        var endOfData = Int64.min
        for part in parts {
            endOfData = max(endOfData, part.endOfData)
            part.items.forEach { key, counts in
                let v = variantOfLabel[Int32(truncatingIfNeeded: key >> 32)]!, item = Int32(truncatingIfNeeded: key)
                items[v][item, default: ItemCounts()].impressions += Int(counts.0)
                items[v][item, default: ItemCounts()].clicks += Int(counts.1)
                items[v][item, default: ItemCounts()].purchases += Int(counts.2)
            }
            part.positions.forEach { key, counts in
                let v = variantOfLabel[Int32(truncatingIfNeeded: key >> 32)]!, position = Int32(truncatingIfNeeded: key)
                positions[v][position, default: PositionCounts()].impressions += Int(counts.0)
                positions[v][position, default: PositionCounts()].clicks += Int(counts.1)
            }
        }
        return Attribution(experiment: experiment, variants: labels.map { log.labels[$0] }, variantLabels: labels,
                           users: users, dataQuality: dq, positions: positions, items: items, endOfData: endOfData)
    }

    /// The rounds of the log (DESIGN.md §7, "Rounds"): every served impression left after
    /// duplicates, bots and viewability (rules 1–3), never collapsed by impression dedup, each with
    /// its own click as reward; only those that carry a `propensity` when `onlyLogged`. No experiment
    /// is needed. In user order and, per user, in (ts, input order).
    public static func rounds(_ log: EventLog, config: FunnelConfig, onlyLogged: Bool = false) -> [Round] {
        runWorkers(log, Rules(config: config, experiment: ""), collect: onlyLogged ? .logged : .all).base.values().flatMap(\.rounds)
    }

    /// `experiment: null` needs exactly one experiment among valid exposures (DESIGN.md §7).
    static func chooseExperiment(_ log: EventLog, config: FunnelConfig) throws(AttributionError) -> String {
        if let name = config.experiment { return name }
        var seen: [Int32] = []
        for e in log.events where e.type == .exposure && !seen.contains(e.experiment) {
            seen.append(e.experiment)
            if seen.count > 20 { break }
        }
        if seen.count == 1 { return log.labels[seen[0]] }
        if seen.isEmpty {
            throw AttributionError.noValidExposure(in: "the events")
        }
        let names = seen.map { "'\(log.labels[$0])'" }.joined(separator: ", ")
        throw AttributionError(message: "the events hold several experiments (\(names)); choose one with ab_testing.experiment in funnel.yaml")
    }

    /// Applies the rules to contiguous ranges of users on all cores; one output per range, in user
    /// order. Each user's events are then run again under each of `windows` (users only), while
    /// they are in cache.
    static func runWorkers(_ log: EventLog, _ rules: Rules, collect: RoundCollection,
                           windows: [Rules] = []) -> (base: ResultSlots<PartOutput>, windows: [ResultSlots<PartOutput>]) {
        let byUser = groupByUser(log)
        let userCount = log.users.count
        let parts = max(1, min(64, userCount / 2048 + 1))
        let results = ResultSlots<PartOutput>(count: parts)
        let windowResults = windows.map { _ in ResultSlots<PartOutput>(count: parts) }
        let impSlot = SlotArray(count: log.events.count)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = userCount * part / parts, hi = userCount * (part + 1) / parts
            var worker = UserWorker(log: log, rules: rules, byUser: byUser, impSlot: impSlot)
            worker.collect = collect
            var others = windows.map { r -> UserWorker in
                var w = UserWorker(log: log, rules: r, byUser: byUser, impSlot: impSlot)
                w.usersOnly = true
                return w
            }
            for u in lo..<hi {
                worker.process(user: Int32(u))
                for k in others.indices { others[k].process(user: Int32(u)) }
            }
            results.set(part, worker.output)
            for (k, w) in others.enumerated() { windowResults[k].set(part, w.output) }
        }
        return (results, windowResults)
    }

    /// Event indices grouped by user, each group in input order (a counting sort).
    static func groupByUser(_ log: EventLog) -> (offsets: [Int32], indices: [Int32]) {
        var offsets = [Int32](repeating: 0, count: log.users.count + 1)
        for e in log.events { offsets[Int(e.user) + 1] += 1 }
        for u in 0..<log.users.count { offsets[u + 1] += offsets[u] }
        var cursor = offsets
        var indices = [Int32](repeating: 0, count: log.events.count)
        for (i, e) in log.events.enumerated() {
            indices[Int(cursor[Int(e.user)])] = Int32(i)
            cursor[Int(e.user)] += 1
        }
        return (offsets, indices)
    }
}

/// The configuration in milliseconds.
struct Rules: Sendable {
    var viewabilityThreshold: Double
    var viewabilityDurationMs: Double
    var dedupWindow: Int64
    var botFilter: Bool
    var botMaxClicks: Int
    var clickWindow: Int64
    var clockSkew: Int64
    var dedupClicks: Bool
    var conversionWindow: Int64
    var viewThrough: Bool
    var viewThroughWindow: Int64
    var experiment: String
    var lookback: Int64
    /// Events after this instant are ignored by every rule (`FunnelConfig.asOf`).
    var asOf: Int64?

    init(config c: FunnelConfig, experiment: String) {
        viewabilityThreshold = c.viewabilityThreshold
        viewabilityDurationMs = c.viewabilityDurationMs
        dedupWindow = FunnelConfig.millis(seconds: c.dedupWindowSeconds)
        botFilter = c.botFilter
        botMaxClicks = c.botMaxClicksPerMinute
        clickWindow = FunnelConfig.millis(seconds: c.clickWindowSeconds)
        clockSkew = FunnelConfig.millis(seconds: c.clockSkewSeconds)
        dedupClicks = c.dedupClicks
        conversionWindow = FunnelConfig.millis(hours: c.conversionWindowHours)
        viewThrough = c.viewThrough
        viewThroughWindow = FunnelConfig.millis(hours: c.viewThroughWindowHours)
        self.experiment = experiment
        lookback = FunnelConfig.millis(hours: c.cupedLookbackDays * 24)
        asOf = c.asOf
    }
}

/// What one worker produced for a contiguous range of users.
struct PartOutput: Sendable {
    struct User: Sendable {
        var user: Int32
        var variantLabel: Int32
        var firstExposure: Int64
        var segments: [(key: Int32, value: Int32)]
        var stats: UserStats
        var pre: UserStats
    }
    var users: [User] = []
    var dataQuality = DataQuality()
    /// Keyed by variant label << 32 | position: (impressions, clicks, unused).
    var positions = CountMap()
    var rounds: [Round] = []
    /// Keyed by variant label << 32 | item id: (impressions, clicks, purchases).
    var items = CountMap()
    var endOfData = Int64.min
}

/// A per-event scratch array written by workers at disjoint indices (each event belongs to one user).
final class SlotArray: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    let count: Int
    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: -1, count: max(count, 1))
    }
    deinit { pointer.deallocate() }
}

/// Three counts per 64-bit key in an open-addressing table with a multiplicative hash: the
/// per-position and per-item counts of a worker, updated for every counted impression (a
/// `Dictionary` hashes with SipHash, several times slower here).
struct CountMap: Sendable {
    var keys: [UInt64]      // key + 1; 0 marks an empty slot
    var counts: [(Int32, Int32, Int32)]
    var used = 0
    var shift: UInt64

    init() {
        keys = [UInt64](repeating: 0, count: 16)
        counts = [(Int32, Int32, Int32)](repeating: (0, 0, 0), count: 16)
        shift = 64 - 4
    }

    @inline(__always) static func key(_ high: Int32, _ low: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: high)) << 32 | UInt64(UInt32(bitPattern: low))
    }

    /// Adds (a, b, c) to the counts of `key`.
    @inline(__always) mutating func add(_ key: UInt64, _ a: Int32, _ b: Int32, _ c: Int32) {
        let stored = key &+ 1
        var i = Int((stored &* 0x9E37_79B9_7F4A_7C15) >> shift)
        let mask = keys.count - 1
        while true {
            let k = keys[i]
            if k == stored {
                counts[i].0 &+= a; counts[i].1 &+= b; counts[i].2 &+= c
                return
            }
            if k == 0 {
                keys[i] = stored
                counts[i] = (a, b, c)
                used += 1
                if used * 2 > keys.count { grow() }
                return
            }
            i = (i + 1) & mask
        }
    }

    mutating func grow() {
        let oldKeys = keys, oldCounts = counts
        keys = [UInt64](repeating: 0, count: oldKeys.count * 2)
        counts = [(Int32, Int32, Int32)](repeating: (0, 0, 0), count: oldKeys.count * 2)
        shift -= 1
        used = 0
        for (i, k) in oldKeys.enumerated() where k != 0 { add(k &- 1, oldCounts[i].0, oldCounts[i].1, oldCounts[i].2) }
    }

    /// Every (key, counts).
    func forEach(_ body: (UInt64, (Int32, Int32, Int32)) -> Void) {
        for (i, k) in keys.enumerated() where k != 0 { body(k &- 1, counts[i]) }
    }
}
