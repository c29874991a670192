import Foundation

/// Simulated scenarios.
public enum Scenario: String, Sendable, CaseIterable {
    /// The treatment ranks by attractiveness alone: more clicks on items that sell less.
    case clickbait
    /// Both arms use the same ranker: no true difference.
    case aa
    /// Two rankers (control: relevance, treatment: popularity) logged by a stochastic policy: 30 % of
    /// requests uniformly shuffled, every impression with its propensity; clicks follow the
    /// position-based model with known examination probabilities.
    case positionBias = "position-bias"
    /// The position-bias world with items that recur: each session draws 24 candidates (popular
    /// items more often) and makes 2–6 requests minutes apart, each showing 8 of them, so a user sees
    /// the same item several times within the hour, at different positions. Every showing is a round
    /// of its own for off-policy evaluation and position bias; the report counts it once (rule 4).
    /// Clicks only (no carts or purchases) and no traps besides quarantined junk lines.
    case positionBiasRecurring = "position-bias-recurring"

    /// Whether the scenario logs a stochastic ranking policy with propensities.
    public var logsPropensities: Bool { self == .positionBias || self == .positionBiasRecurring }
}

/// Ground truth of a simulated log: what `funnel report` must recover with the default configuration.
public struct Truth: Sendable {
    public struct Counts: Sendable, Equatable {
        public var users = 0, impressions = 0, clicks = 0, carts = 0, purchases = 0
        public var revenueCents = 0, orders = 0, convertingUsers = 0, orderRevenueCents = 0
    }
    public var scenario: Scenario
    public var seed: UInt64
    public var simulatedUsers: Int
    public var lines = 0
    public var variants: [String: Counts] = [:]
    /// data_quality counters by report key.
    public var dataQuality: [String: Int] = [:]
    /// Per variant, over counted ordinary impressions: Σ click probability and Σ purchase probability
    /// (the expected clicks and purchases given what was shown).
    public var expected: [String: (impressions: Int, clicks: Double, purchases: Double)] = [:]
    public var quarantined: [String: Int] = [:]
    /// Examination probability per position (1-based), the same in every scenario.
    public var examination: [Double]
    /// position-bias scenario: Σ over ordinary-session impressions of the expected click of the
    /// logging policy and of the evaluation policy (divide by `policyImpressions` for the value).
    public var loggingValueSum = 0.0
    public var evaluationValueSum = 0.0
    public var policyImpressions = 0

    mutating func bump(_ key: String, _ by: Int = 1) { dataQuality[key, default: 0] += by }

    /// The truth as a JSON object.
    public func json() -> String {
        func counts(_ c: Counts) -> String {
            "{\"users\":\(c.users),\"impressions\":\(c.impressions),\"clicks\":\(c.clicks),\"carts\":\(c.carts),\"purchases\":\(c.purchases),\"revenue\":\(Double(c.revenueCents) / 100),\"orders\":\(c.orders),\"converting_users\":\(c.convertingUsers),\"order_revenue\":\(Double(c.orderRevenueCents) / 100)}"
        }
        let variants = self.variants.keys.sorted().map { "\"\($0)\":\(counts(self.variants[$0]!))" }.joined(separator: ",")
        let dq = dataQuality.keys.sorted().map { "\"\($0)\":\(dataQuality[$0]!)" }.joined(separator: ",")
        let q = quarantined.keys.sorted().map { "\"\($0)\":\(quarantined[$0]!)" }.joined(separator: ",")
        let exam = examination.map { String($0) }.joined(separator: ",")
        let expectedJSON = expected.keys.sorted().map { k in
            let e = expected[k]!
            return "\"\(k)\":{\"impressions\":\(e.impressions),\"clicks\":\(e.clicks),\"purchases\":\(e.purchases)}"
        }.joined(separator: ",")
        var policies = ""
        if scenario.logsPropensities && policyImpressions > 0 {
            let n = Double(policyImpressions)
            policies = ",\"policies\":{\"exploration\":\(Simulator.exploration),\"impressions\":\(policyImpressions),\"logging_value\":\(loggingValueSum / n),\"evaluation_value\":\(evaluationValueSum / n),\"evaluation_policy\":\"each request's items in order of attractiveness\",\"value\":\"expected clicks per impression over the ordinary sessions simulated\"}"
        }
        return "{\"scenario\":\"\(scenario.rawValue)\",\"seed\":\(seed),\"simulated_users\":\(simulatedUsers),\"lines\":\(lines),\"experiment\":\"recs-v2\",\"control\":\"control\",\"variants\":{\(variants)},\"data_quality\":{\(dq),\"quarantined\":{\(q)}},\"examination\":[\(exam)],\"expected\":{\(expectedJSON)}\(policies)}\n"
    }
}

/// Writes a realistic event log with known ground truth and every trap the counting rules handle.
///
/// Ordinary users are generated so that no rule fires by accident (items are shown to a user at
/// most once, sessions are hours apart, a purchase follows its click within the window); each trap
/// is then injected on purpose into a user chosen for it, and counted in the truth.
public struct Simulator {
    public let scenario: Scenario
    public let users: Int
    public let seed: UInt64
    var rng: SeededRandom
    var truth: Truth
    var out = LineWriter()
    var nextEvent = 0
    var duplicatesPending: [[UInt8]] = []
    var randomizedRequest = false
    /// The arm's ranked order of the last list, before any exploration shuffle.
    var rankedOrder: [Int] = []
    /// position-bias scenario: keep every request's items, logged ranked order and evaluation order
    /// in `policyRequests` (for writing the policy files).
    public var keepPolicies = false
    public var policyRequests: [(request: String, ranked: [Int], evaluation: [Int])] = []
    var lastImpressionID: String? = nil

    // Catalog.
    let itemCount = 1000
    var attractiveness: [Double] = []
    var conversion: [Double] = []
    var priceCents: [Int] = []
    var clickbait: [Bool] = []
    /// Cumulative popularity of the items (Zipf, exponent 1, in catalog order): how often an item is
    /// a candidate in the recurring scenario.
    var popularity: [Double] = []
    public static let examination = [1.0, 0.72, 0.55, 0.45, 0.38, 0.33, 0.29, 0.26]
    /// position-bias scenario: share of requests shown in uniformly shuffled order (the logging
    /// policy's exploration), and the factor from attractiveness to relevance (a search-like
    /// surface where the top result is clicked about a quarter of the time).
    public static let exploration = 0.3
    static let relevanceScale = 3.0
    /// Items per ranked list (1–8): fewer gives fewer events per user, the shape of a log with
    /// many light users.
    public var listLength = 8
    /// Whether `ts` is written half of the time as epoch milliseconds (a JSON number) instead of
    /// RFC 3339 (chosen by a hash of the time, so the random stream and the truth are unchanged).
    public var mixedTimestamps = false
    let start: Int64 = 1_772_323_200_000  // 2026-03-01T00:00:00Z

    /// Whether users carry traps (duplicates, bots, late clicks, ...); calibration runs without them.
    public var traps = true

    /// `catalogSeed` fixes the items (attractiveness, conversion, price): runs with different `seed`
    /// and the same catalog share one ground truth.
    public init(scenario: Scenario, users: Int, seed: UInt64, catalogSeed: UInt64 = 2026) {
        self.scenario = scenario
        self.users = users
        self.seed = seed
        rng = SeededRandom(seed: catalogSeed)
        truth = Truth(scenario: scenario, seed: seed, simulatedUsers: users, examination: Simulator.examination)
        for key in ["duplicate_events", "bot_users", "non_viewable_impressions", "collapsed_impressions", "orphan_clicks", "late_clicks",
                    "unattributed_conversions", "leaked_users", "variant_mismatches", "non_viewable_clicks", "duplicate_clicks"] {
            truth.dataQuality[key] = 0
        }
        for reason in ["invalid_json", "missing_field", "wrong_type", "unknown_type", "invalid_timestamp", "invalid_value"] {
            truth.quarantined[reason] = 0
        }
        for _ in 0..<itemCount {
            let bait = rng.chance(0.2)
            clickbait.append(bait)
            let a = 0.06 * exp(0.5 * rng.normal())
            attractiveness.append(min(0.6, bait ? a * 2.2 : a))
            let q = 0.12 * exp(0.4 * rng.normal())
            conversion.append(min(0.9, bait ? q * 0.25 : q))
            priceCents.append(max(199, Int(3000 * exp(0.6 * rng.normal()))))
        }
        var total = 0.0
        for i in 0..<itemCount { total += 1 / Double(i + 1); popularity.append(total) }
        for i in 0..<itemCount { popularity[i] /= total }
        rng = SeededRandom(seed: seed)
    }

    /// Generates the log, calling `flush` with blocks of bytes; returns the truth.
    public mutating func run(flush: ([UInt8]) throws -> Void) rethrows -> Truth {
        for u in 0..<users {
            simulateUser(u)
            if out.bytes.count > 1 << 20 { try flush(out.bytes); out.bytes.removeAll(keepingCapacity: true) }
        }
        for line in duplicatesPending { emitLine(line) }
        duplicatesPending.removeAll()
        try flush(out.bytes)
        out.bytes.removeAll()
        truth.variants["control", default: Truth.Counts()].users += 0
        truth.variants["treatment", default: Truth.Counts()].users += 0
        return truth
    }

    /// Click probability of `item` at 0-based `position`. In the position-bias scenario it follows
    /// the position-based model exactly: examination × relevance, relevance capped at 0.95.
    func clickProbability(item: Int, position k: Int, deviceFactor: Double, clickFactor: Double) -> Double {
        if scenario.logsPropensities {
            return Simulator.examination[k] * min(0.95, Simulator.relevanceScale * attractiveness[item] * deviceFactor * clickFactor)
        }
        return min(0.95, Simulator.examination[k] * attractiveness[item] * deviceFactor * clickFactor)
    }

    /// position-bias scenario: adds the request's expected clicks under the logging policy (ranked
    /// order with probability 1 − ε, uniform shuffle with probability ε) and under the evaluation
    /// policy (the same items by attractiveness, best first) to the truth.
    mutating func recordPolicies(request: String, ranked: [Int], deviceFactor: Double, clickFactor: Double) {
        let n = ranked.count
        let evaluation = ranked.sorted { attractiveness[$0] != attractiveness[$1] ? attractiveness[$0] > attractiveness[$1] : $0 < $1 }
        var rankedValue = 0.0, evaluationValue = 0.0, shuffledValue = 0.0
        for k in 0..<n {
            rankedValue += clickProbability(item: ranked[k], position: k, deviceFactor: deviceFactor, clickFactor: clickFactor)
            evaluationValue += clickProbability(item: evaluation[k], position: k, deviceFactor: deviceFactor, clickFactor: clickFactor)
            for i in ranked { shuffledValue += clickProbability(item: i, position: k, deviceFactor: deviceFactor, clickFactor: clickFactor) / Double(n) }
        }
        let e = Simulator.exploration
        truth.loggingValueSum += (1 - e) * rankedValue + e * shuffledValue
        truth.evaluationValueSum += evaluationValue
        truth.policyImpressions += n
        if keepPolicies { policyRequests.append((request, ranked, evaluation)) }
    }

    mutating func emitLine(_ line: [UInt8]) {
        out.bytes.append(contentsOf: line)
        out.bytes.append(0x0A)
        truth.lines += 1
    }

    mutating func eventID() -> String {
        nextEvent += 1
        return "ev\(nextEvent)"
    }

    // MARK: event writers

    struct Imp {
        var id: String
        var item: Int
        var position: Int
        var ts: Int64
        var surface: String
        var request: String
    }

    mutating func exposure(user: String, ts: Int64, variant: String, device: String, userType: String) -> [UInt8] {
        var w = LineWriter(mixed: mixedTimestamps)
        w.raw("{\"type\":\"exposure\",\"event_id\":\"\(eventID())\",\"ts\":"); w.timestamp(ts)
        w.raw(",\"user_id\":\"\(user)\",\"experiment\":\"recs-v2\",\"variant\":\"\(variant)\",\"context\":{\"device\":\"\(device)\",\"user_type\":\"\(userType)\"}}")
        emitLine(w.bytes)
        return w.bytes
    }

    enum Viewability { case full, absent, below }

    mutating func impression(user: String, imp: Imp, view: Viewability, variant: String?, propensity: Double? = nil,
                             ranker: String? = nil, bot: Bool = false) -> [UInt8] {
        var w = LineWriter(mixed: mixedTimestamps)
        w.raw("{\"type\":\"impression\",\"event_id\":\"\(imp.id)\",\"ts\":"); w.timestamp(imp.ts)
        w.raw(",\"user_id\":\"\(user)\",\"item_id\":\"i\(imp.item)\",\"position\":"); w.int(imp.position)
        w.raw(",\"surface\":\"\(imp.surface)\",\"request_id\":\"\(imp.request)\",\"price\":"); w.cents(priceCents[imp.item])
        if let variant { w.raw(",\"experiment\":\"recs-v2\",\"variant\":\"\(variant)\"") }
        if let propensity { w.raw(",\"propensity\":\(propensity)") }
        if let ranker { w.raw(",\"context\":{\"ranker\":\"\(ranker)\"}") }
        switch view {
        case .full:
            w.raw(",\"viewable_fraction\":"); w.cents(rng.int(50, 100))
            w.raw(",\"viewable_ms\":"); w.int(rng.int(1000, 15000))
        case .absent: break
        case .below:
            w.raw(",\"viewable_fraction\":"); w.cents(rng.int(0, 49))
            w.raw(",\"viewable_ms\":"); w.int(rng.int(0, 20000))
        }
        if bot { w.raw(",\"bot\":true") }
        w.raw("}")
        emitLine(w.bytes)
        return w.bytes
    }

    mutating func click(user: String, impressionID: String, ts: Int64, bot: Bool = false) -> [UInt8] {
        var w = LineWriter(mixed: mixedTimestamps)
        w.raw("{\"type\":\"click\",\"event_id\":\"\(eventID())\",\"ts\":"); w.timestamp(ts)
        w.raw(",\"user_id\":\"\(user)\",\"impression_id\":\"\(impressionID)\"")
        if bot { w.raw(",\"bot\":true") }
        w.raw("}")
        emitLine(w.bytes)
        return w.bytes
    }

    mutating func cart(user: String, item: Int, ts: Int64, impressionID: String?) {
        var w = LineWriter(mixed: mixedTimestamps)
        w.raw("{\"type\":\"add_to_cart\",\"event_id\":\"\(eventID())\",\"ts\":"); w.timestamp(ts)
        w.raw(",\"user_id\":\"\(user)\",\"item_id\":\"i\(item)\"")
        if let impressionID { w.raw(",\"impression_id\":\"\(impressionID)\"") }
        w.raw(",\"quantity\":1}")
        emitLine(w.bytes)
    }

    /// Writes a purchase; returns its revenue in cents.
    mutating func purchase(user: String, ts: Int64, lines: [(item: Int, quantity: Int)]) -> Int {
        var total = 0
        let id = eventID()
        var w = LineWriter(mixed: mixedTimestamps)
        w.raw("{\"type\":\"purchase\",\"event_id\":\"\(id)\",\"ts\":"); w.timestamp(ts)
        w.raw(",\"user_id\":\"\(user)\",\"order_id\":\"o\(id)\",\"items\":[")
        for (k, l) in lines.enumerated() {
            if k > 0 { w.raw(",") }
            w.raw("{\"item_id\":\"i\(l.item)\",\"quantity\":"); w.int(l.quantity)
            w.raw(",\"price\":"); w.cents(priceCents[l.item]); w.raw("}")
            total += l.quantity * priceCents[l.item]
        }
        w.raw("]}")
        emitLine(w.bytes)
        return total
    }
}
