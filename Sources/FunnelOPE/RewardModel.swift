import Foundation

/// A regularised logistic regression of the reward on the round's context, the action and the
/// position (the direct method's reward model), fitted with cross-fitting: the prediction for a
/// round comes from a model that did not see it.
///
/// Features: one-hot context features, one-hot action, one-hot position, and the numeric
/// user–item affinity of the action when the logs carry it. Fitted by Adagrad on the L2-penalised
/// log loss (deterministic: rounds in order, fixed epochs).
public struct RewardModel: Sendable {
    public var l2: Double = 1e-4
    public var epochs = 30
    public var learningRate = 0.1
    public var folds = 3

    public init() {}

    struct Weights {
        var w: [Double]
        var bias: Double
    }

    /// Layout of the feature vector.
    struct Layout {
        let context: Int, actions: Int, positions: Int, hasAffinity: Bool
        var actionBase: Int { context }
        var positionBase: Int { context + actions }
        var affinityIndex: Int { context + actions + positions }
        var size: Int { context + actions + positions + (hasAffinity ? 1 : 0) }
    }

    @inline(__always)
    static func score(_ m: Weights, _ data: LoggedBandit, _ layout: Layout, round i: Int, action a: Int, position k: Int) -> Double {
        var s = m.bias
        for f in data.contextFeatures[i] { s += m.w[Int(f)] }
        s += m.w[layout.actionBase + a] + m.w[layout.positionBase + k]
        if let aff = data.affinity { s += m.w[layout.affinityIndex] * Double(aff[i * data.items.count + a]) }
        return s
    }

    func fit(_ data: LoggedBandit, _ layout: Layout, rounds: [Int]) -> Weights {
        var m = Weights(w: [Double](repeating: 0, count: layout.size), bias: 0)
        var g2 = [Double](repeating: 1e-8, count: layout.size)
        var gb2 = 1e-8
        // Start the bias at the log-odds of the mean reward.
        let mean = rounds.reduce(0.0) { $0 + min(max(data.rewards[$1], 0), 1) } / Double(max(rounds.count, 1))
        let clipped = min(max(mean, 1e-6), 1 - 1e-6)
        m.bias = log(clipped / (1 - clipped))
        for _ in 0..<epochs {
            for i in rounds {
                let a = Int(data.actions[i]), k = Int(data.positions[i])
                let p = 1 / (1 + exp(-RewardModel.score(m, data, layout, round: i, action: a, position: k)))
                let g = p - min(max(data.rewards[i], 0), 1)
                func step(_ j: Int, _ x: Double) {
                    let grad = g * x + l2 * m.w[j]
                    g2[j] += grad * grad
                    m.w[j] -= learningRate * grad / g2[j].squareRoot()
                }
                for f in data.contextFeatures[i] { step(Int(f), 1) }
                step(layout.actionBase + a, 1)
                step(layout.positionBase + k, 1)
                if let aff = data.affinity { step(layout.affinityIndex, Double(aff[i * data.items.count + a])) }
                gb2 += g * g
                m.bias -= learningRate * g / gb2.squareRoot()
            }
        }
        return m
    }

    /// Cross-fitted predictions: `logged[i]` = q̂(x_i, a_i, k_i) and `expected[i]` = Σ_a π(a | k_i) q̂(x_i, a, k_i).
    public func predict(_ data: LoggedBandit, policy: EvaluationPolicy) -> (logged: [Double], expected: [Double]) {
        let layout = Layout(context: data.featureCount, actions: data.items.count, positions: data.positionCount, hasAffinity: data.affinity != nil)
        var logged = [Double](repeating: 0, count: data.count)
        var expected = [Double](repeating: 0, count: data.count)
        let k = max(2, folds)
        for fold in 0..<k {
            let train = (0..<data.count).filter { $0 % k != fold }
            let model = fit(data, layout, rounds: train)
            for i in stride(from: fold, to: data.count, by: k) {
                let pos = Int(data.positions[i])
                logged[i] = 1 / (1 + exp(-RewardModel.score(model, data, layout, round: i, action: Int(data.actions[i]), position: pos)))
                var e = 0.0
                for (a, pi) in policy.support(data, round: i, position: pos) {
                    e += pi / (1 + exp(-RewardModel.score(model, data, layout, round: i, action: a, position: pos)))
                }
                expected[i] = e
            }
        }
        return (logged, expected)
    }
}
