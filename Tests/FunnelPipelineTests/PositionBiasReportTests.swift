import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelBase
import FunnelPipeline
import FunnelReport
import FunnelTestSupport
import Testing

/// The report's `position_bias` section from impression contexts, worked by hand.
struct PositionBiasReportTests {
    /// Shuffled traffic (context ranker=random): position 1 has 4 impressions and 2 clicks,
    /// position 2 has 4 impressions and 1 click → propensity (1/4)/(2/4) = 0.5. One ranked
    /// treatment impression at position 2 is clicked too (not used by the randomized method).
    /// Control: 4 impressions, clicks at positions 1 and 2 → naive 0.5, ips (1 + 1/0.5)/4 = 0.75.
    /// Treatment: 5 impressions, clicks at 1 and 2 → naive 0.4, ips (1 + 2)/5 = 0.6.
    static func log() throws -> EventLog {
        var b = LogBuilder()
        for k in 1...4 { b.exposure("c\(k)", 0, variant: "control"); b.exposure("t\(k)", 0, variant: "treatment") }
        let random = #","context":{"ranker":"random"}"#
        let plan: [(String, String, Int, Bool)] = [
            ("c1", "a", 1, true), ("c2", "b", 1, false), ("c3", "c", 2, true), ("c4", "d", 2, false),
            ("t1", "a", 1, true), ("t2", "b", 1, false), ("t3", "c", 2, false), ("t4", "d", 2, false),
        ]
        for (user, item, position, clicked) in plan {
            let i = b.impression(user, 10, item: item, position: position, extra: random)
            if clicked { b.click(user, 20, on: i) }
        }
        let ranked = b.impression("t1", 30, item: "e", position: 2, extra: #","context":{"ranker":"relevance"}"#)
        b.click("t1", 40, on: ranked)
        return try EventReader.read(text: b.lines.joined(separator: "\n"))
    }

    @Test func randomizedPropensitiesAndDebiasedCTR() throws {
        let log = try Self.log()
        let config = try FunnelConfig.parse(yaml: "position_bias: {method: randomized, floor: 0.1}")
        let attribution = try Attributor.run(log, config: config)
        let section = try #require(try PositionBiasReport.section(log: log, attribution: attribution, config: config))
        #expect(section["method"] == .string("randomized"))
        #expect(section["positions"]?["1"]?["propensity"] == .double(1))
        let p2 = try #require(section["positions"]?["2"]?["propensity"])
        guard case .double(let theta) = p2 else { Issue.record("propensity is \(p2)"); return }
        #expect(abs(theta - 0.5) < 1e-12)
        func value(_ v: JSONValue?) -> Double? { if case .double(let d)? = v { return d }; if case .int(let i)? = v { return Double(i) }; return nil }
        #expect(value(section["variants"]?["control"]?["ctr"]) == 0.5)
        #expect(abs(value(section["variants"]?["control"]?["ips_ctr"])! - 0.75) < 1e-12)
        #expect(abs(value(section["variants"]?["treatment"]?["ctr"])! - 0.4) < 1e-12)
        #expect(abs(value(section["variants"]?["treatment"]?["ips_ctr"])! - 0.6) < 1e-12)
        // Item c in control: one impression at position 2, clicked → ips 1/0.5 = 2.
        guard case .array(let items)? = section["items"] else { Issue.record("no items"); return }
        let c = try #require(items.first { $0["item_id"] == .string("c") && $0["variant"] == .string("control") })
        #expect(abs(value(c["ips_ctr"])! - 2) < 1e-12)
    }

    @Test func noSectionByDefaultAndFixedPropensities() throws {
        let log = try Self.log()
        let attribution = try Attributor.run(log, config: FunnelConfig())
        #expect(try PositionBiasReport.section(log: log, attribution: attribution, config: FunnelConfig()) == nil)
        // Fixed propensities (0.8, 0.2) are relative to position 1: (1, 0.25); floor 0.3 clips 0.25.
        let config = try FunnelConfig.parse(yaml: "position_bias: {propensities: [0.8, 0.2], floor: 0.3}")
        let section = try #require(try PositionBiasReport.section(log: log, attribution: attribution, config: config))
        #expect(section["method"] == .string("fixed"))
        guard case .double(let ips)? = section["variants"]?["control"]?["ips_ctr"] else { Issue.record("no ips_ctr"); return }
        #expect(abs(ips - (1 + 1 / 0.3) / 4) < 1e-12)
    }

    /// Rounds are grouped as the report analyses users (rule 7): a leaked user's rounds, a round
    /// before the user's first exposure and an impression naming the other variant belong to no
    /// variant, while a re-shown item is a round of its own with its own click.
    @Test func roundGroupsFollowRuleSeven() throws {
        var b = LogBuilder()
        b.exposure("c", 100, variant: "control")
        b.exposure("leak", 100, variant: "control")
        b.exposure("leak", 200, variant: "treatment")
        b.impression("c", 50, item: "z")                                      // before the exposure
        let first = b.impression("c", 150, item: "a", position: 2)
        let again = b.impression("c", 160, item: "a", position: 1)            // rule 4 collapses it
        b.impression("c", 170, item: "b", extra: #","experiment":"exp","variant":"treatment""#)   // mismatch
        b.impression("leak", 300, item: "a")
        b.click("c", 165, on: again)
        _ = first
        let log = try EventReader.read(text: b.lines.joined(separator: "\n"))
        let attribution = try Attributor.run(log, config: FunnelConfig())
        #expect(attribution.dataQuality.leakedUsers == 1)
        let groups = PositionBiasReport.RoundGroups(attribution, log: log)
        let rounds = Attributor.rounds(log, config: FunnelConfig())
        #expect(rounds.count == 5)
        let grouped = rounds.map { groups.group($0, log: log) }
        #expect(grouped == [nil, 0, 0, nil, nil])
        let tally = PositionBiasReport.tally(log: log, attribution: attribution, config: FunnelConfig(), bootstrap: 0, seed: 1,
                                             unassigned: "(not analysed)")
        let (d, items) = PositionBiasReport.debiased(tally, groups: ["control", "(not analysed)"], propensities: [1, 0.5], floor: 0.05, itemLimit: 5)
        // Two analysed rounds of a: position 2 unclicked, position 1 clicked → ips (1/1)/2.
        let control = try #require(d["control"])
        #expect(control.impressions == 2 && control.clicks == 1 && abs(control.ips - 0.5) < 1e-12)
        // The other three rounds (z before the exposure, b mismatched, the leaked user's a).
        #expect(d["(not analysed)"]?.impressions == 3 && tally.rounds == 5 && tally.collapsed == 1)
        #expect(items.count == 1 + 3, "a for control; z, b and a for the rest")
        // The report counts the two showings once, with the click.
        #expect(attribution.counts("control").impressions == 1 && attribution.counts("control").clicks == 1)
    }
}
