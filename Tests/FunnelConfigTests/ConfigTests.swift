import FunnelConfig
import Testing

struct ConfigTests {
    static let restatedDefaults = """
    impression_tracking:
      viewability_threshold: 0.5
      viewability_duration_ms: 1000
      dedup_window_seconds: 3600
      bot_filter: true
      bot_max_clicks_per_minute: 20
    click_attribution:
      click_window_seconds: 1800
      clock_skew_seconds: 5
      dedup_clicks: true
      conversion_window_hours: 24
      view_through: false
      view_through_window_hours: 168
    ab_testing:
      experiment: null
      control: control
      expected_split: null
      significance_level: 0.05
      correction: holm
      primary_metric: purchases_per_user
      guardrail_metrics: [ctcvr, revenue_per_user]
      srm_p_threshold: 0.001
    """

    @Test func restatedDefaultsEqualDefaults() throws {
        #expect(try FunnelConfig.parse(yaml: Self.restatedDefaults) == FunnelConfig())
        #expect(try FunnelConfig.parse(yaml: "") == FunnelConfig())
    }

    @Test func readsValues() throws {
        let c = try FunnelConfig.parse(yaml: """
        click_attribution: {view_through: true, conversion_window_hours: 72}
        ab_testing: {expected_split: {control: 1, treatment: 3}, correction: benjamini_hochberg}
        """)
        #expect(c.viewThrough && c.conversionWindowHours == 72)
        #expect(c.expectedSplit == ["control": 1, "treatment": 3])
        #expect(c.correction == .benjaminiHochberg)
        let p = try FunnelConfig.parse(yaml: "position_bias: {method: em, floor: 0.02, randomized_context: traffic=explore, ranker_context: model}")
        #expect(p.positionBiasMethod == "em" && p.positionBiasFloor == 0.02)
        #expect(p.randomizedContext == "traffic=explore" && p.rankerContext == "model")
        let q = try FunnelConfig.parse(yaml: "ab_testing: {sequential: confidence-sequence, sequential_tuning: 1000}")
        #expect(q.sequential == .confidenceSequence && q.sequentialTuning == 1000)
        #expect(FunnelConfig().sequential == .none && FunnelConfig().sequentialTuning == 5000)
    }

    @Test("bad keys and values name the key, the file and what is allowed", arguments: [
        ("impression_tracking:\n  dedup_window: 10", "impression_tracking.dedup_window", "allowed: viewability_threshold"),
        ("impression_tracking:\n  viewability_threshold: 1.5", "impression_tracking.viewability_threshold", "[0, 1]"),
        ("impression_tracking:\n  bot_filter: maybe", "impression_tracking.bot_filter", "true or false"),
        ("impression_tracking:\n  bot_max_clicks_per_minute: 2.5", "impression_tracking.bot_max_clicks_per_minute", "integer"),
        ("click_attribution:\n  click_window_seconds: \"10\"", "click_attribution.click_window_seconds", "number"),
        ("ab_testing:\n  correction: sidak", "ab_testing.correction", "holm | bonferroni"),
        ("ab_testing:\n  primary_metric: clicks", "ab_testing.primary_metric", "ctr"),
        ("ab_testing:\n  sequential: always", "ab_testing.sequential", "none | confidence-sequence | msprt"),
        ("ab_testing:\n  sequential_tuning: 0", "ab_testing.sequential_tuning", "0"),
        ("abtesting: {}", "abtesting", "unknown section"),
        ("position_bias:\n  method: cascade", "position_bias.method", "none | randomized | em | harvesting"),
        ("position_bias:\n  propensities: [1.0, 0]", "position_bias.propensities[2]", "(0, 1]"),
        ("position_bias:\n  randomized_context: shuffled", "position_bias.randomized_context", "key=value"),
        ("position_bias:\n  floors: 0.1", "position_bias.floors", "allowed: method, propensities, floor"),
    ])
    func errors(_ yaml: String, _ key: String, _ hint: String) {
        do {
            _ = try FunnelConfig.parse(yaml: yaml, file: "my.yaml")
            Issue.record("expected an error for \(yaml)")
        } catch {
            #expect(error.key == key)
            #expect(error.description.contains("my.yaml"))
            #expect(error.description.contains(hint), "\(error.description)")
        }
    }
}
