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

extension MetricName {
    /// The coordinates (`Quantity`) of the metric's numerator and denominator; nil denominator:
    /// a per-user metric (denominator 1).
    public var coordinates: (numerator: Int, denominator: Int?) {
        switch self {
        case .ctr: return (Quantity.clicks.rawValue, Quantity.impressions.rawValue)
        case .cartRate: return (Quantity.carts.rawValue, Quantity.clicks.rawValue)
        case .postClickCVR: return (Quantity.purchases.rawValue, Quantity.clicks.rawValue)
        case .ctcvr: return (Quantity.purchases.rawValue, Quantity.impressions.rawValue)
        case .revenuePerImpression: return (Quantity.revenue.rawValue, Quantity.impressions.rawValue)
        case .userConversionRate: return (Quantity.converting.rawValue, nil)
        case .purchasesPerUser: return (Quantity.orders.rawValue, nil)
        case .revenuePerUser: return (Quantity.orderRevenue.rawValue, nil)
        case .aov: return (Quantity.orderRevenue.rawValue, Quantity.orders.rawValue)
        }
    }
}

/// Per-variant metric estimates from the moments of the per-user sufficient statistics (DESIGN.md §4).
public enum Metrics {
    /// The estimate of one metric for one group of users.
    public static func estimate(_ metric: MetricName, _ m: Moments, alpha: Double) -> Estimate {
        let (num, den) = metric.coordinates
        switch metric.kind {
        case .ratio:
            return Estimators.ratio(m, numerator: num, denominator: den!, alpha: alpha)
        case .proportion:
            return Estimators.proportion(successes: Int(m.sum(num)), trials: m.count, alpha: alpha)
        case .mean:
            return Estimators.mean(m, num, alpha: alpha)
        }
    }

    /// Estimates of every metric for one group of users.
    public static func estimates(_ m: Moments, alpha: Double) -> [(MetricName, Estimate)] {
        MetricName.allCases.map { ($0, estimate($0, m, alpha: alpha)) }
    }

    /// The comparison of one metric between two groups of users.
    public static func difference(_ metric: MetricName, control c: Moments, treatment t: Moments, alpha: Double) -> Difference {
        let num = metric.coordinates.numerator
        switch metric.kind {
        case .proportion:
            return Compare.proportions(kc: Int(c.sum(num)), nc: c.count, kt: Int(t.sum(num)), nt: t.count, alpha: alpha)
        case .mean:
            return Compare.means(control: c, treatment: t, quantity: num, alpha: alpha)
        case .ratio:
            return Compare.ratios(control: estimate(metric, c, alpha: alpha), treatment: estimate(metric, t, alpha: alpha), alpha: alpha)
        }
    }
}
