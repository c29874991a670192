import Foundation

/// A map from a model's probability to a calibrated probability, fitted on validation data.
public enum Calibration: Codable, Sendable, Equatable {
    case none
    /// p′ = σ(a·logit(p) + b), fitted by maximum likelihood (Newton's method).
    case platt(a: Double, b: Double)
    /// Isotonic (pool-adjacent-violators) fit of the label on p; p′ interpolates linearly between
    /// the fitted points and is clipped to the end values outside them.
    case isotonic(x: [Double], y: [Double])

    public var name: String {
        switch self {
        case .none: return "none"
        case .platt: return "platt"
        case .isotonic: return "isotonic"
        }
    }

    public func apply(_ p: Double) -> Double {
        switch self {
        case .none:
            return p
        case .platt(let a, let b):
            let q = min(max(p, 1e-15), 1 - 1e-15)
            return 1 / (1 + exp(-(a * log(q / (1 - q)) + b)))
        case .isotonic(let x, let y):
            guard let first = x.first, let last = x.last else { return p }
            if p <= first { return y[0] }
            if p >= last { return y[y.count - 1] }
            var lo = 0, hi = x.count - 1
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if x[mid] <= p { lo = mid } else { hi = mid }
            }
            let t = (p - x[lo]) / (x[hi] - x[lo])
            return y[lo] + t * (y[hi] - y[lo])
        }
    }

    /// Platt scaling: logistic regression of the label on logit(p), without regularisation.
    public static func fitPlatt(predictions: [Double], labels: [Float]) -> Calibration {
        let z = predictions.map { p -> Double in let q = min(max(p, 1e-15), 1 - 1e-15); return log(q / (1 - q)) }
        var a = 1.0, b = 0.0
        for _ in 0..<100 {
            var g0 = 0.0, g1 = 0.0, h00 = 0.0, h01 = 0.0, h11 = 0.0
            for (i, zi) in z.enumerated() {
                let p = 1 / (1 + exp(-(a * zi + b)))
                let r = p - Double(labels[i]), w = p * (1 - p)
                g0 += r * zi; g1 += r
                h00 += w * zi * zi; h01 += w * zi; h11 += w
            }
            let det = h00 * h11 - h01 * h01
            guard det > 1e-300 else { break }
            let da = (h11 * g0 - h01 * g1) / det, db = (h00 * g1 - h01 * g0) / det
            a -= da; b -= db
            if abs(da) < 1e-13 && abs(db) < 1e-13 { break }
        }
        return .platt(a: a, b: b)
    }

    /// Isotonic regression of the label on p: equal predictions are pooled first (their mean
    /// label, weighted by count), then adjacent violators are merged.
    public static func fitIsotonic(predictions: [Double], labels: [Float]) -> Calibration {
        let order = predictions.indices.sorted { predictions[$0] < predictions[$1] }
        var xs: [Double] = [], sums: [Double] = [], weights: [Double] = []
        for i in order {
            if let last = xs.last, last == predictions[i] {
                sums[sums.count - 1] += Double(labels[i]); weights[weights.count - 1] += 1
            } else {
                xs.append(predictions[i]); sums.append(Double(labels[i])); weights.append(1)
            }
        }
        // Blocks: (mean, weight, first point, last point).
        var blocks: [(mean: Double, weight: Double, start: Int, end: Int)] = []
        for k in xs.indices {
            blocks.append((sums[k] / weights[k], weights[k], k, k))
            while blocks.count > 1 && blocks[blocks.count - 2].mean >= blocks[blocks.count - 1].mean {
                let b2 = blocks.removeLast(), b1 = blocks.removeLast()
                let w = b1.weight + b2.weight
                blocks.append(((b1.mean * b1.weight + b2.mean * b2.weight) / w, w, b1.start, b2.end))
            }
        }
        var fitted = [Double](repeating: 0, count: xs.count)
        for b in blocks { for k in b.start...b.end { fitted[k] = b.mean } }
        return .isotonic(x: xs, y: fitted)
    }
}

/// Negative downsampling: keeping each negative with probability r inflates the odds by 1/r;
/// p′ = p / (p + (1 − p)/r) undoes it.
public func correctDownsampling(_ p: Double, rate r: Double) -> Double {
    r >= 1 ? p : p / (p + (1 - p) / r)
}
