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
        let experiment = try chooseExperiment(log, config: config)
        let results = runWorkers(log, Rules(config: config, experiment: experiment), collect: .none)
        // Merge in user order; variants in order of first appearance, control first.
        var dq = DataQuality()
        dq.eventsRead = log.counters.eventsRead
        dq.quarantined = log.counters.quarantined
        dq.duplicateEvents = log.counters.duplicateEvents
        var variantOfLabel: [Int32: Int] = [:]
        var labels: [Int32] = []
        if let c = log.labels.lookup(config.control) {
            for part in results.values() where part.users.contains(where: { $0.variantLabel == c }) {
                variantOfLabel[c] = 0; labels.append(c); break
            }
        }
        var users: [AnalysedUser] = []
        var positions: [[Int32: PositionCounts]] = []
        for part in results.values() {
            dq.add(part.dataQuality)
            for u in part.users {
                let v: Int
                if let known = variantOfLabel[u.variantLabel] { v = known } else {
                    v = labels.count; variantOfLabel[u.variantLabel] = v; labels.append(u.variantLabel)
                }
                users.append(AnalysedUser(user: u.user, variant: v, firstExposure: u.firstExposure, segments: u.segments, stats: u.stats, pre: u.pre))
            }
        }
        positions = [[Int32: PositionCounts]](repeating: [:], count: labels.count)
        var items = [[Int32: ItemCounts]](repeating: [:], count: labels.count)
        var endOfData = Int64.min
        for part in results.values() {
            endOfData = max(endOfData, part.endOfData)
            for (key, counts) in part.items {
                let v = variantOfLabel[key.variant]!
                items[v][key.position, default: ItemCounts()].impressions += counts.impressions
                items[v][key.position, default: ItemCounts()].clicks += counts.clicks
                items[v][key.position, default: ItemCounts()].purchases += counts.purchases
            }
            for (key, counts) in part.positions {
                let v = variantOfLabel[key.variant]!
                positions[v][key.position, default: PositionCounts()].impressions += counts.impressions
                positions[v][key.position, default: PositionCounts()].clicks += counts.clicks
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
        runWorkers(log, Rules(config: config, experiment: ""), collect: onlyLogged ? .logged : .all).values().flatMap(\.rounds)
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
            throw AttributionError(message: "the events hold no valid exposure, so no experiment can be analysed; check that exposure events are present and valid (see the quarantine)")
        }
        let names = seen.map { "'\(log.labels[$0])'" }.joined(separator: ", ")
        throw AttributionError(message: "the events hold several experiments (\(names)); choose one with ab_testing.experiment in funnel.yaml")
    }

    /// Applies the rules to contiguous ranges of users on all cores; one output per range, in user order.
    static func runWorkers(_ log: EventLog, _ rules: Rules, collect: RoundCollection) -> ResultSlots<PartOutput> {
        let byUser = groupByUser(log)
        let userCount = log.users.count
        let parts = max(1, min(64, userCount / 2048 + 1))
        let results = ResultSlots<PartOutput>(count: parts)
        let impSlot = SlotArray(count: log.events.count)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = userCount * part / parts, hi = userCount * (part + 1) / parts
            var worker = UserWorker(log: log, rules: rules, byUser: byUser, impSlot: impSlot)
            worker.collect = collect
            for u in lo..<hi { worker.process(user: Int32(u)) }
            results.set(part, worker.output)
        }
        return results
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
    struct PositionKey: Hashable, Sendable { var variant: Int32; var position: Int32 }
    var users: [User] = []
    var dataQuality = DataQuality()
    var positions: [PositionKey: PositionCounts] = [:]
    var rounds: [Round] = []
    /// Keyed by (variant label, item id) — `position` holds the item.
    var items: [PositionKey: ItemCounts] = [:]
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
