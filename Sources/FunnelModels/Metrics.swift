import Foundation

/// Evaluation of predicted click probabilities against 0/1 labels.
public struct ClickEvaluation: Sendable {
    public var rows: Int
    /// Area under the ROC curve (ties count one half); nil without both classes.
    public var auc: Double?
    /// Impression-weighted mean of per-group AUC over groups with both classes.
    public var gauc: Double?
    public var gaucGroupsUsed = 0
    /// Mean negative log-likelihood (natural log), predictions clipped to [1e-15, 1 − 1e-15].
    public var logloss: Double
    /// Log loss divided by the entropy of the base rate.
    public var normalizedEntropy: Double?
    /// Expected calibration error over 15 equal-mass bins.
    public var ece: Double
    /// mean(prediction) / mean(label).
    public var calibrationRatio: Double?
    /// [mean prediction, mean label, rows] per bin.
    public var reliability: [(prediction: Double, actual: Double, rows: Int)]
}

public enum ClickMetrics {
    public static let bins = 15

    /// AUC by ranks: (Σ ranks of positives − P(P + 1)/2) / (P·N), tied predictions sharing their mean rank.
    public static func auc(_ labels: [Float], _ predictions: [Double], rows: [Int]? = nil) -> Double? {
        let idx = rows ?? Array(labels.indices)
        var order = idx
        order.sort { predictions[$0] < predictions[$1] }
        var positives = 0.0, rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && predictions[order[j + 1]] == predictions[order[i]] { j += 1 }
            let meanRank = Double(i + j) / 2 + 1
            for k in i...j where labels[order[k]] > 0.5 { positives += 1; rankSum += meanRank }
            i = j + 1
        }
        let negatives = Double(order.count) - positives
        guard positives > 0, negatives > 0 else { return nil }
        return (rankSum - positives * (positives + 1) / 2) / (positives * negatives)
    }

    public static func evaluate(labels: [Float], predictions: [Double], groups: [Int32]? = nil) -> ClickEvaluation {
        let n = labels.count
        var loss = 0.0, sumP = 0.0, sumY = 0.0
        for i in 0..<n {
            let p = min(max(predictions[i], 1e-15), 1 - 1e-15)
            let y = Double(labels[i])
            loss -= y * log(p) + (1 - y) * log(1 - p)
            sumP += predictions[i]
            sumY += y
        }
        let logloss = n > 0 ? loss / Double(n) : .nan
        let base = n > 0 ? sumY / Double(n) : .nan
        let entropy = base > 0 && base < 1 ? -(base * log(base) + (1 - base) * log(1 - base)) : 0
        // Equal-mass bins over predictions sorted ascending (stable: ties keep input order).
        let order = (0..<n).sorted { predictions[$0] != predictions[$1] ? predictions[$0] < predictions[$1] : $0 < $1 }
        var reliability: [(Double, Double, Int)] = []
        var ece = 0.0
        for b in 0..<bins {
            let lo = b * n / bins, hi = (b + 1) * n / bins
            guard hi > lo else { continue }
            var p = 0.0, y = 0.0
            for k in lo..<hi { p += predictions[order[k]]; y += Double(labels[order[k]]) }
            let m = Double(hi - lo)
            reliability.append((p / m, y / m, hi - lo))
            ece += m / Double(n) * abs(p / m - y / m)
        }
        var result = ClickEvaluation(rows: n, auc: auc(labels, predictions), gauc: nil, logloss: logloss,
                                     normalizedEntropy: entropy > 0 ? logloss / entropy : nil, ece: ece,
                                     calibrationRatio: sumY > 0 ? sumP / sumY : nil, reliability: reliability)
        if let groups {
            var members: [Int32: [Int]] = [:]
            for (i, g) in groups.enumerated() { members[g, default: []].append(i) }
            var weighted = 0.0, weight = 0.0
            for (_, rows) in members.sorted(by: { $0.key < $1.key }) {
                guard let a = auc(labels, predictions, rows: rows) else { continue }
                weighted += Double(rows.count) * a
                weight += Double(rows.count)
                result.gaucGroupsUsed += 1
            }
            result.gauc = weight > 0 ? weighted / weight : nil
        }
        return result
    }
}
