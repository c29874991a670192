import FunnelAttribution
import FunnelConfig
import FunnelStats

/// How a metric is estimated and compared (DESIGN.md §4).
public enum MetricKind: Sendable {
    /// Σ numerator / Σ denominator over users: delta-method intervals.
    case ratio
    /// The share of users with the outcome: Wilson intervals.
    case proportion
    /// The mean per user: t intervals, Welch's test.
    case mean
}

extension MetricName {
    /// The metric's kind: the one place that says how each metric is estimated.
    public var kind: MetricKind {
        switch self {
        case .userConversionRate: return .proportion
        case .purchasesPerUser, .revenuePerUser: return .mean
        case .ctr, .cartRate, .postClickCVR, .ctcvr, .revenuePerImpression, .aov: return .ratio
        }
    }

    /// A user's numerator and denominator of the metric (1 for per-user metrics; a proportion's
    /// numerator is 1 for a user with the outcome, else 0): the one definition of each metric.
    public func parts(_ s: UserStats) -> (Double, Double) {
        switch self {
        case .ctr: return (Double(s.clicks), Double(s.impressions))
        case .cartRate: return (Double(s.carts), Double(s.clicks))
        case .postClickCVR: return (Double(s.purchases), Double(s.clicks))
        case .ctcvr: return (Double(s.purchases), Double(s.impressions))
        case .revenuePerImpression: return (s.revenue, Double(s.impressions))
        case .userConversionRate: return (s.converting ? 1 : 0, 1)
        case .purchasesPerUser: return (Double(s.orders), 1)
        case .revenuePerUser: return (s.orderRevenue, 1)
        case .aov: return (s.orderRevenue, Double(s.orders))
        }
    }
}

/// Per-variant metric estimates from per-user sufficient statistics (DESIGN.md §4).
public enum Metrics {
    /// The estimate of one metric for one group of users.
    public static func estimate(_ metric: MetricName, _ users: [UserStats], alpha: Double) -> Estimate {
        switch metric.kind {
        case .ratio:
            return Estimators.ratio(x: users.map { metric.parts($0).0 }, y: users.map { metric.parts($0).1 }, alpha: alpha)
        case .proportion:
            return Estimators.proportion(successes: users.filter { metric.parts($0).0 == 1 }.count, trials: users.count, alpha: alpha)
        case .mean:
            return Estimators.mean(users.map { metric.parts($0).0 }, alpha: alpha)
        }
    }

    /// Estimates of every metric for one group of users.
    public static func estimates(_ users: [UserStats], alpha: Double) -> [(MetricName, Estimate)] {
        MetricName.allCases.map { ($0, estimate($0, users, alpha: alpha)) }
    }

    /// The comparison of one metric between two groups of users.
    public static func difference(_ metric: MetricName, control c: [UserStats], treatment t: [UserStats], alpha: Double) -> Difference {
        switch metric.kind {
        case .proportion:
            let kc = c.filter { metric.parts($0).0 == 1 }.count, kt = t.filter { metric.parts($0).0 == 1 }.count
            return Compare.proportions(kc: kc, nc: c.count, kt: kt, nt: t.count, alpha: alpha)
        case .mean:
            return Compare.means(control: c.map { metric.parts($0).0 }, treatment: t.map { metric.parts($0).0 }, alpha: alpha)
        case .ratio:
            return Compare.ratios(control: estimate(metric, c, alpha: alpha), treatment: estimate(metric, t, alpha: alpha), alpha: alpha)
        }
    }
}
