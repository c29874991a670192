import Foundation
import FunnelBase
import FunnelModels

/// A conversion model's metrics per head: the click head on every row, the conversion head on
/// the clicked rows (where its label is observed), the product pCTCVR on every row; and, with the
/// true probabilities of a simulated log, how the conversion head does over the entire exposure
/// space — the bias that training on clicked rows leaves.
public struct ConversionEvaluation: Sendable {
    public var ctr: ClickEvaluation
    public var cvr: ClickEvaluation
    public var ctcvr: ClickEvaluation
    public var truth: TruthMetrics?

    /// Metrics against the known truth of every row (`funnel simulate --truth`).
    public struct TruthMetrics: Sendable {
        /// AUC of pCVR against each impression's conversion-if-clicked draw, over every row.
        public var entireSpaceAUC: Double?
        /// The same AUC for the true pCVR: the best any model can reach on these rows.
        public var bestEntireSpaceAUC: Double?
        /// mean(pCVR) / mean(true pCVR) over the unclicked rows, and over the clicked rows.
        public var unclickedCalibrationRatio: Double?
        public var clickedCalibrationRatio: Double?
        /// Mean true pCVR over unclicked rows over that over clicked rows: the size of the selection bias.
        public var trueUnclickedOverClicked: Double?
    }

    public static func evaluate(_ t: Table, ctr: [Double], cvr: [Double], ctcvr: [Double], truth: ConversionTruth?) -> ConversionEvaluation {
        let conversions = t.conversions ?? [Float](repeating: 0, count: t.rows)
        let clicked = (0..<t.rows).filter { t.labels[$0] > 0.5 }
        return ConversionEvaluation(
            ctr: ClickMetrics.evaluate(labels: t.labels, predictions: ctr),
            cvr: ClickMetrics.evaluate(labels: clicked.map { conversions[$0] }, predictions: clicked.map { cvr[$0] }),
            ctcvr: ClickMetrics.evaluate(labels: ctcvrLabels(t), predictions: ctcvr),
            truth: truth.map { truth in
                let unclicked = (0..<t.rows).filter { t.labels[$0] <= 0.5 }
                func ratio(_ rows: [Int]) -> Double? {
                    let truthSum = rows.reduce(0.0) { $0 + truth.pCVR[$1] }
                    guard !rows.isEmpty, truthSum > 0 else { return nil }
                    return rows.reduce(0.0) { $0 + cvr[$1] } / truthSum
                }
                func mean(_ rows: [Int]) -> Double { rows.reduce(0.0) { $0 + truth.pCVR[$1] } / Double(max(rows.count, 1)) }
                let draws = truth.convertIfClicked
                return TruthMetrics(entireSpaceAUC: ClickMetrics.auc(draws, cvr), bestEntireSpaceAUC: ClickMetrics.auc(draws, truth.pCVR),
                                    unclickedCalibrationRatio: ratio(unclicked), clickedCalibrationRatio: ratio(clicked),
                                    trueUnclickedOverClicked: clicked.isEmpty || unclicked.isEmpty ? nil : mean(unclicked) / mean(clicked))
            })
    }

    /// The JSON document of `funnel evaluate` for a conversion model.
    public var document: JSONValue {
        func head(_ e: ClickEvaluation, _ rows: String) -> JSONValue {
            .object([("rows_used", .string(rows)), ("rows", .int(e.rows)), ("auc", .number(e.auc)), ("logloss", .number(e.logloss)),
                     ("normalized_entropy", .number(e.normalizedEntropy)), ("ece", .number(e.ece)), ("calibration_ratio", .number(e.calibrationRatio))])
        }
        var members: [(String, JSONValue)] = [("ctr", head(ctr, "all")), ("cvr", head(cvr, "clicked")), ("ctcvr", head(ctcvr, "all"))]
        if let t = truth {
            members.append(("truth", .object([
                ("entire_space_cvr_auc", .number(t.entireSpaceAUC)), ("best_entire_space_cvr_auc", .number(t.bestEntireSpaceAUC)),
                ("unclicked_cvr_calibration_ratio", .number(t.unclickedCalibrationRatio)),
                ("clicked_cvr_calibration_ratio", .number(t.clickedCalibrationRatio)),
                ("true_unclicked_over_clicked_cvr", .number(t.trueUnclickedOverClicked)),
            ])))
        }
        return .object(members)
    }
}

/// The true conversion probability of every row and its conversion-if-clicked draw, as
/// `funnel simulate --scenario selection-bias --truth` writes them (columns `p_cvr` and
/// `convert_if_clicked`, one row per impression in the table's order).
public struct ConversionTruth: Sendable {
    public var pCVR: [Double]
    public var convertIfClicked: [Float]

    public static func read(path: String, rows: Int) throws(PipelineError) -> ConversionTruth {
        let bytes: [UInt8]
        do { bytes = try readFileBytes(path) } catch { throw PipelineError(error.description) }
        var lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard let header = lines.first?.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) else {
            throw PipelineError("\(path): the file is empty; expected a header with p_cvr and convert_if_clicked")
        }
        guard let pc = header.firstIndex(of: "p_cvr"), let dc = header.firstIndex(of: "convert_if_clicked") else {
            throw PipelineError("\(path): line 1: the header needs columns p_cvr and convert_if_clicked (funnel simulate --scenario selection-bias --truth writes them); it has \(header.joined(separator: ", "))")
        }
        guard lines.count - 1 == rows else {
            throw PipelineError("\(path): \(lines.count - 1) rows, but the table has \(rows); --truth must be the truth file of the same impressions, in the same order")
        }
        var truth = ConversionTruth(pCVR: [], convertIfClicked: [])
        truth.pCVR.reserveCapacity(rows)
        truth.convertIfClicked.reserveCapacity(rows)
        for (k, line) in lines.dropFirst().enumerated() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false)
            guard cells.count == header.count, let p = Double(cells[pc]), p >= 0, p <= 1, let d = Double(cells[dc]), d == 0 || d == 1 else {
                throw PipelineError("\(path): line \(k + 2): expected \(header.count) cells with p_cvr in [0, 1] and convert_if_clicked 0 or 1")
            }
            truth.pCVR.append(p)
            truth.convertIfClicked.append(Float(d))
        }
        return truth
    }
}
