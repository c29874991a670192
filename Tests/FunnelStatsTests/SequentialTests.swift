import Foundation
import FunnelStats
import FunnelTestSupport
import Testing

/// Always-valid inference against GrowthBook's published case and the independent implementation
/// of the published formulas in `tools/fixtures/make_sequential_fixtures.py`.
struct SequentialTests {
    static let fixtures: JSONFixture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/sequential_fixtures.json")
        return try! JSONFixture.load(url)
    }()

    /// GrowthBook's own test case of its sequential interval: a mean of 0.50336 with standard
    /// error 0.33341, N = 6,461 users in both arms and N* = 1,000 give (−0.55844, 1.56516).
    @Test func growthBookPublishedInterval() throws {
        let r = try #require(Sequential.confidenceSequence(estimate: 0.5033610858562358, standardError: 0.3334122146400735, n: 6461, alpha: 0.05, nStar: 1000))
        #expect(abs(r.lower - -0.55844) < 5e-6 && abs(r.upper - 1.56516) < 5e-6, "\(r)")
        // The always-valid p-value is 1 here (E < 1), and the fixed-horizon interval is far narrower.
        #expect(r.pValue == 1)
        #expect(r.upper - r.lower > 2 * 1.96 * 0.33341)
    }

    @Test func confidenceSequencesMatchTheIndependentImplementation() throws {
        let cases = try Self.fixtures.objects("growthbook_cs")
        #expect(cases.count >= 8)
        for c in cases {
            let note = try c.string("note")
            let r = try #require(Sequential.confidenceSequence(estimate: try c.double("estimate"), standardError: try c.double("standard_error"),
                                                               n: try c.double("n"), alpha: try c.double("alpha"), nStar: try c.double("n_star")))
            let interval = try c.doubles("interval"), p = try c.double("p_value")
            #expect(abs(r.lower - interval[0]) <= 1e-9 * max(1, abs(interval[0])) && abs(r.upper - interval[1]) <= 1e-9 * max(1, abs(interval[1])),
                    "\(note): \(r) vs \(interval)")
            #expect(abs(r.pValue - p) <= 1e-9 * max(p, 1e-300) || abs(r.pValue - p) < 1e-15, "\(note): p \(r.pValue) vs \(p)")
        }
    }

    @Test func msprtMatchesTheIndependentImplementation() throws {
        let cases = try Self.fixtures.objects("msprt")
        #expect(cases.count >= 6)
        for c in cases {
            let note = try c.string("note")
            let alpha = try c.double("alpha")
            var tau2 = try c.double("tau2")
            if try c.string("tau2_rule") == "statsig" {
                // The mixing variance from the groups' per-user variances and users, as Statsig documents it.
                let i = try c.object("inputs")
                tau2 = try #require(Sequential.statsigMixingVariance(varianceTreatment: try i.double("var_t"), usersTreatment: try i.double("n_t"),
                                                                      varianceControl: try i.double("var_c"), usersControl: try i.double("n_c"), alpha: alpha))
                let given = try c.double("tau2")
                #expect(abs(tau2 - given) <= 1e-12 * tau2)
            }
            let r = try #require(Sequential.msprt(estimate: try c.double("estimate"), standardError: try c.double("standard_error"), tau2: tau2, alpha: alpha))
            let interval = try c.doubles("interval"), p = try c.double("p_value")
            #expect(abs(r.lower - interval[0]) <= 1e-9 * max(1e-3, abs(interval[0])) && abs(r.upper - interval[1]) <= 1e-9 * max(1e-3, abs(interval[1])),
                    "\(note): \(r) vs \(interval)")
            #expect(abs(r.pValue - p) <= 1e-9 * max(p, 1e-300), "\(note): p \(r.pValue) vs \(p)")
        }
        // Daily looks with the mixing variance held: the p-value of each look, whose running
        // minimum is the always-valid p-value of the path.
        let paths = try Self.fixtures.objects("msprt_daily_looks")
        #expect(!paths.isEmpty)
        for path in paths {
            var running = 1.0
            for look in try path.objects("looks") {
                let r = try #require(Sequential.msprt(estimate: try look.double("estimate"), standardError: try look.double("standard_error"),
                                                      tau2: try path.double("tau2"), alpha: try path.double("alpha")))
                running = min(running, r.pValue)
                let single = try look.double("p_value_single"), sofar = try look.double("p_value_running")
                #expect(abs(r.pValue - single) <= 1e-9 * r.pValue)
                #expect(abs(running - sofar) <= 1e-9 * running)
            }
        }
    }

    /// Worked by hand: with τ² = V the statistic is √½·exp(θ̂²/(4V)); θ̂ = 2s gives Λ = √½·e, p = √2/e.
    @Test func msprtByHand() throws {
        let r = try #require(Sequential.msprt(estimate: 2, standardError: 1, tau2: 1, alpha: 0.05))
        #expect(abs(r.pValue - 2.0.squareRoot() / exp(1)) < 1e-15)
        // Half-width √(V(V + τ²)/τ²·(2 ln 20 + ln 2)) = √(2·(2 ln 20 + ln 2)).
        #expect(abs((r.upper - r.lower) / 2 - (2 * (2 * log(20.0) + log(2.0))).squareRoot()) < 1e-12)
        #expect(Sequential.msprt(estimate: 1, standardError: 0, tau2: 1, alpha: 0.05) == nil)
    }
}
