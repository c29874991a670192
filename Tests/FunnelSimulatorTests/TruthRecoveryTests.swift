import Foundation
import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelReport
import FunnelSimulator
import Testing

func simulateToText(_ scenario: Scenario, users: Int, seed: UInt64, listLength: Int = 8, mixedTimestamps: Bool = false) -> (String, Truth) {
    var sim = Simulator(scenario: scenario, users: users, seed: seed)
    sim.listLength = listLength
    sim.mixedTimestamps = mixedTimestamps
    var bytes: [UInt8] = []
    let truth = sim.run { bytes += $0 }
    return (String(decoding: bytes, as: UTF8.self), truth)
}

/// The slow plan: end-to-end simulations. `scripts/test` runs them with FUNNEL_SLOW_TESTS=1;
/// a plain `swift test` skips them to stay fast.
let slowPlan = ProcessInfo.processInfo.environment["FUNNEL_SLOW_TESTS"] == "1"

@Suite(.enabled(if: slowPlan, "slow plan: set FUNNEL_SLOW_TESTS=1 (scripts/test does)"), .timeLimit(.minutes(10)))
struct SlowTruthRecoveryTests {
    /// Every trap count and every variant count of the truth file is recovered exactly.
    @Test("the report recovers the simulator's truth exactly", arguments: [
        (Scenario.clickbait, UInt64(1)), (.aa, 2), (.positionBias, 3), (.clickbait, 4),
    ])
    func recoversTruth(_ scenario: Scenario, _ seed: UInt64) throws {
        try recover(simulateToText(scenario, users: 2500, seed: seed))
    }

    /// The benchmark's shape: short lists (fewer events per user) and timestamps mixed between
    /// RFC 3339 strings and epoch milliseconds.
    @Test func recoversTruthWithShortListsAndMixedTimestamps() throws {
        let (text, truth) = simulateToText(.clickbait, users: 2500, seed: 6, listLength: 2, mixedTimestamps: true)
        let numeric = text.components(separatedBy: "\"ts\":1").count - 1, strings = text.components(separatedBy: "\"ts\":\"").count - 1
        #expect(numeric > strings / 2 && strings > numeric / 2, "\(numeric) numeric, \(strings) string timestamps")
        #expect(Double(truth.lines) / 2500 < 9)
        try recover((text, truth))
    }

    func recover(_ simulated: (String, Truth)) throws {
        let (text, truth) = simulated
        let log = try EventReader.read(text: text)
        let doc = ReportBuilder(summary: try Attributor.summarize(log, config: FunnelConfig()), config: FunnelConfig()).json()
        #expect(log.counters.eventsRead == truth.lines)
        for (name, c) in truth.variants {
            let v = try #require(doc["variants"]?[name])
            #expect(v["users"] == .int(c.users), "\(name) users")
            #expect(v["impressions"] == .int(c.impressions), "\(name) impressions")
            #expect(v["clicks"] == .int(c.clicks), "\(name) clicks")
            #expect(v["carts"] == .int(c.carts), "\(name) carts")
            #expect(v["purchases"] == .int(c.purchases), "\(name) purchases")
            #expect(v["orders"] == .int(c.orders), "\(name) orders")
            #expect(v["converting_users"] == .int(c.convertingUsers), "\(name) converting")
            if case .double(let r)? = v["revenue"] { #expect(abs(r - Double(c.revenueCents) / 100) < 1e-6) } else { Issue.record("revenue") }
            if case .double(let r)? = v["order_revenue"] { #expect(abs(r - Double(c.orderRevenueCents) / 100) < 1e-6) } else { Issue.record("order_revenue") }
        }
        let dq = try #require(doc["data_quality"])
        for (key, value) in truth.dataQuality {
            #expect(dq[key] == .int(value), "\(key)")
            #expect(value > 0, "the simulator should inject \(key)")
        }
        for (reason, value) in truth.quarantined {
            #expect(dq["quarantined"]?[reason] == .int(value), "\(reason)")
            #expect(value > 0, "the simulator should inject \(reason)")
        }
    }

    /// Items recur within the hour: the report counts each re-showing once (its impressions,
    /// clicks, collapsed impressions and duplicate clicks equal the simulator's own count of rule 4),
    /// while every served impression is a round with the propensity it was logged with.
    @Test func recurringItemsCountOnceInTheReportAndEveryShowingIsARound() throws {
        let (text, truth) = simulateToText(.positionBiasRecurring, users: 1500, seed: 5)
        let log = try EventReader.read(text: text)
        let doc = ReportBuilder(summary: try Attributor.summarize(log, config: FunnelConfig()), config: FunnelConfig()).json()
        #expect(log.counters.eventsRead == truth.lines)
        for (name, c) in truth.variants {
            let v = try #require(doc["variants"]?[name])
            #expect(v["users"] == .int(c.users), "\(name) users")
            #expect(v["impressions"] == .int(c.impressions), "\(name) impressions")
            #expect(v["clicks"] == .int(c.clicks), "\(name) clicks")
        }
        let dq = try #require(doc["data_quality"])
        for (key, value) in truth.dataQuality { #expect(dq[key] == .int(value), "\(key)") }
        let collapsed = try #require(truth.dataQuality["collapsed_impressions"])
        #expect(collapsed > truth.policyImpressions / 5, "items should recur often")
        let rounds = Attributor.rounds(log, config: FunnelConfig(), onlyLogged: true)
        #expect(rounds.count == truth.policyImpressions)
        #expect(rounds.filter(\.collapsed).count == collapsed)
        #expect(rounds.allSatisfy { $0.propensity == 0.3 / 8 || $0.propensity == 0.7 + 0.3 / 8 })
    }

    @Test func sameSeedSameBytes() {
        let (a, _) = simulateToText(.clickbait, users: 300, seed: 9)
        let (b, _) = simulateToText(.clickbait, users: 300, seed: 9)
        let (c, _) = simulateToText(.clickbait, users: 300, seed: 10)
        #expect(a == b)
        #expect(a != c)
    }

    /// The clickbait treatment raises CTR and lowers ctcvr and orders per user; A/A does not move them.
    @Test func clickbaitMovesCTRUpAndConversionDown() throws {
        let (text, truth) = simulateToText(.clickbait, users: 20_000, seed: 5)
        let c = truth.variants["control"]!, t = truth.variants["treatment"]!
        let ctr = { (x: Truth.Counts) in Double(x.clicks) / Double(x.impressions) }
        let ctcvr = { (x: Truth.Counts) in Double(x.purchases) / Double(x.impressions) }
        let ordersPerUser = { (x: Truth.Counts) in Double(x.orders) / Double(x.users) }
        #expect(ctr(t) > ctr(c) * 1.1)
        #expect(ctcvr(t) < ctcvr(c) * 0.9)
        #expect(ordersPerUser(t) < ordersPerUser(c))
        #expect(!text.isEmpty)
    }
}

@Suite(.enabled(if: slowPlan, "slow plan: set FUNNEL_SLOW_TESTS=1 (scripts/test does)"), .timeLimit(.minutes(10)))
struct SlowDiagnosisOnSimulationTests {
    func report(_ scenario: Scenario, users: Int, seed: UInt64) throws -> (Analysis, [Finding]) {
        let (text, _) = simulateToText(scenario, users: users, seed: seed)
        let log = try EventReader.read(text: text)
        let config = FunnelConfig()
        let analysis = Analysis(summary: try Attributor.summarize(log, config: config), config: config)
        return (analysis, Diagnosis.findings(analysis, DiagnosisInputs(catalogSize: log.items.count)))
    }

    /// The clickbait treatment: the post-click stage is named, the cohort shift dominates, do_not_ship.
    @Test func clickbaitIsExplained() throws {
        let (a, findings) = try report(.clickbait, users: 8000, seed: 21)
        #expect(a.verdict == .doNotShip)
        let stage = try #require(findings.first { $0.kind == "stage_decomposition" })
        #expect(stage.numbers.first { $0.0 == "stage" }?.1 == .string("post_click"))
        let mix = try #require(findings.first { $0.kind == "mix_vs_rate" })
        guard case .double(let share)? = mix.numbers.first(where: { $0.0 == "mix_share" })?.1,
              case .double(let m)? = mix.numbers.first(where: { $0.0 == "mix" })?.1 else { Issue.record("mix numbers"); return }
        #expect(m < 0)
        #expect(share > 0.5)
        #expect(findings.contains { $0.kind == "diversity_coverage" })
        #expect(findings.contains { $0.kind == "position_effects" })
    }

    /// A/A: no significant overall comparison and an inconclusive verdict (fixed seed).
    @Test func aaIsInconclusive() throws {
        let (a, findings) = try report(.aa, users: 8000, seed: 22)
        #expect(a.verdict == .inconclusive)
        #expect(!findings.contains { $0.severity == .critical && $0.kind == "stage_decomposition" })
        #expect(a.comparisons.filter { $0.segment == nil && $0.significant }.count <= 1)
    }
}
