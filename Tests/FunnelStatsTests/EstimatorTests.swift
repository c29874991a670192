import FunnelStats
import Testing

/// Reference values from scipy.stats / statsmodels (printed by `tools/fixtures/stats_reference.py`).
struct EstimatorTests {
    func close(_ a: Double?, _ b: Double, rel: Double = 1e-6) -> Bool {
        guard let a else { return false }
        return abs(a - b) <= rel * max(abs(b), 1e-300)
    }

    @Test func chiSquareGoodnessOfFit() {
        // scipy.stats.chisquare([1000, 1200]).pvalue = 2.0079e-05
        #expect(close(Estimators.chiSquareGoodnessOfFit(observed: [1000, 1200], weights: [1, 1]), 2.007865612426481e-05, rel: 1e-9))
        // chisquare([135, 115]).pvalue = 0.205903211
        #expect(close(Estimators.chiSquareGoodnessOfFit(observed: [135, 115], weights: [1, 1]), 0.20590321073206466, rel: 1e-9))
        // chisquare([310, 98], f_exp=[306, 102]).pvalue = 0.647434186
        #expect(close(Estimators.chiSquareGoodnessOfFit(observed: [310, 98], weights: [0.75, 0.25]), 0.647434185701797, rel: 1e-9))
    }

    @Test func wilsonInterval() {
        // statsmodels proportion_confint(100, 1000, method="wilson") = (0.082909, 0.120152)
        let e = Estimators.proportion(successes: 100, trials: 1000, alpha: 0.05)
        #expect(close(e.ci?.0, 0.08290944359309571, rel: 1e-9))
        #expect(close(e.ci?.1, 0.1201519631953484, rel: 1e-9))
    }

    @Test func normalQuantileAndTails() {
        #expect(close(Distributions.normalQuantile(0.975), 1.959963984540054, rel: 1e-14))
        #expect(close(Distributions.normalQuantile(0.001), -3.090232306167813, rel: 1e-13))
        // Two-sided p of z = −3.380617 (statsmodels proportions_ztest([100,150],[1000,1000])) = 0.000723233
        #expect(close(Distributions.normalTwoSidedP(-3.380617018914066), 0.000723232716430194, rel: 1e-9))
    }

    @Test func studentT() {
        // scipy.stats.t.ppf(0.975, 10) = 2.228138851986274; 2·t.sf(2, 5) = 0.10193947882985835
        #expect(close(Distributions.studentTQuantile(0.975, df: 10), 2.228138851986274, rel: 1e-10))
        #expect(close(Distributions.studentTTwoSidedP(2, df: 5), 0.10193947882985835, rel: 1e-9))
    }

    @Test func deltaMethodRatioByHand() {
        // x = clicks, y = impressions for 3 users: R = 6/12 = 0.5; x − R·y = [0, 1, −1];
        // var(ddof=1) = 1; ȳ = 4; Var(R) = 1 / (3·16) = 1/48.
        let e = Estimators.ratio(x: [2, 3, 1], y: [4, 4, 4], alpha: 0.05)
        #expect(e.value == 0.5)
        #expect(close(e.variance, 1.0 / 48, rel: 1e-12))
        #expect(Estimators.ratio(x: [1], y: [0], alpha: 0.05).value == nil)
    }
}
