import Foundation

/// The conversion models: towers over one shared embedding, trained on every impression with a
/// click label o and a conversion label r (r = 1 only where o = 1). Tower 0 gives the click logit
/// (ô = pCTR), tower 1 the conversion logit (r̂ = pCVR, the probability of a conversion given a
/// click), and the models with three towers a third head of their own. pCTCVR = ô·r̂.
/// docs/conversion-models.md gives each loss with the papers' equation numbers.
public enum ConversionModelKind: String, CaseIterable, Codable, Sendable {
    /// A click tower on every row and a conversion tower on the clicked rows only (the biased baseline).
    case naiveCVR = "naive-cvr"
    /// ESMM (Ma et al. 2018): the click loss and the CTCVR loss on ô·r̂, both over every row.
    case esmm
    /// ESCM²-IPS (Wang et al. 2022): ESMM plus the conversion loss on clicked rows weighted 1/ô.
    case escm2IPS = "escm2-ips"
    /// ESCM²-DR: ESMM plus the doubly robust conversion loss with an imputation tower.
    case escm2DR = "escm2-dr"
    /// DCMT (Zhu et al. 2023): a factual and a counterfactual conversion tower.
    case dcmt
    /// ChorusCVR (Cheng et al. 2025): an un-conversion tower and the soft alignment on unclicked rows.
    case chorusCVR = "choruscvr"

    public var towers: Int {
        switch self {
        case .naiveCVR, .esmm, .escm2IPS: return 2
        case .escm2DR, .dcmt, .chorusCVR: return 3
        }
    }

    /// What the third tower predicts, for the docs and `funnel train`'s notes.
    public var thirdTower: String? {
        switch self {
        case .naiveCVR, .esmm, .escm2IPS: return nil
        case .escm2DR: return "imputed conversion error"
        case .dcmt: return "counterfactual conversion rate"
        case .chorusCVR: return "un-conversion rate"
        }
    }
}

/// A conversion model's training objective: its kind and constants. Losses are means over a
/// batch's rows D (n of them), except the naive model's conversion loss, a mean over the batch's
/// clicked rows. Propensities are the click tower's ô, never differentiated through (stop-gradient)
/// and clipped from below at `clip` (1 − ô likewise on unclicked rows).
public struct ConversionObjective: Codable, Sendable, Equatable {
    public var kind: ConversionModelKind
    /// Lower bound of ô in 1/ô and of 1 − ô in 1/(1 − ô).
    public var clip: Double
    /// Weight of the ESCM² counterfactual risk (λ_c).
    public var lambda: Double
    /// Weight of DCMT's counterfactual-mechanism constraint mean |1 − (r̂ + r̂*)|.
    public var constraint: Double

    public init(kind: ConversionModelKind, clip: Double = 0.05, lambda: Double = 1, constraint: Double = 0.001) {
        self.kind = kind
        self.clip = clip
        self.lambda = lambda
        self.constraint = constraint
    }

    /// One row's loss, as a term of the batch's sum (the batch loss is Σ_rows / n), and its
    /// gradients with respect to the towers' logits `z` (elements 0..<towers). `clickedWeight` is
    /// n / (clicked rows of the batch), which turns the naive model's conversion term into a mean
    /// over the clicked rows (0 when the batch has none).
    ///
    /// The quantities the losses hold constant (stop-gradient: the propensities from ô, the soft
    /// labels, ESCM²-DR's imputed error in the conversion term and its δ in the imputation term)
    /// are computed from `held` when given, else from `z`; the gradients never flow through them.
    /// A finite-difference check moves `z` with `held` fixed at the unmoved logits.
    @inline(__always)
    public func row(_ z: SIMD4<Double>, click o: Double, conversion r: Double, clickedWeight: Double,
                    held: SIMD4<Double>? = nil) -> (loss: Double, dz: SIMD4<Double>) {
        var dz = SIMD4<Double>()
        let pc = sigmoid(z[0]), pv = sigmoid(z[1])
        let h = held ?? z
        let pcHeld = held == nil ? pc : sigmoid(h[0])
        // The click loss on every row.
        var loss = logLoss(logit: z[0], o)
        dz[0] = pc - o
        if kind == .naiveCVR {
            if o > 0 {
                loss += clickedWeight * logLoss(logit: z[1], r)
                dz[1] = clickedWeight * (pv - r)
            }
            return (loss, dz)
        }
        // The CTCVR loss on every row: δ(o·r, ô·r̂).
        let q = pc * pv
        let ctcvr = clampedBCE(q, o * r)
        loss += ctcvr.loss
        dz[0] += ctcvr.dp * q * (1 - pc)
        dz[1] += ctcvr.dp * q * (1 - pv)
        let w = o / max(pcHeld, clip)
        switch kind {
        case .naiveCVR, .esmm:
            break
        case .escm2IPS:
            if w > 0 {
                let d = clampedBCE(pv, r)
                loss += lambda * w * d.loss
                dz[1] += lambda * w * d.dp * pv * (1 - pv)
            }
        case .escm2DR:
            // ê = z[2] is the imputed error δ(r, r̂) (unbounded); the conversion term
            // ê + o·(δ − ê)/ô trains r̂ only (ê is a constant in it), the imputation term
            // o·(δ − ê)²/ô trains ê only (δ is a constant in it).
            let e = z[2], d = clampedBCE(pv, r)
            let eHeld = h[2], dHeld = held == nil ? d.loss : clampedBCE(sigmoid(h[1]), r).loss
            loss += lambda * (eHeld + w * (d.loss - eHeld))
            dz[1] += lambda * w * d.dp * pv * (1 - pv)
            let error = dHeld - e
            loss += w * error * error
            dz[2] = -2 * w * error
        case .dcmt:
            let cf = sigmoid(z[2])
            let wcf = (1 - o) / max(1 - pcHeld, clip)
            let d = clampedBCE(pv, r), dc = clampedBCE(cf, 1 - r)
            loss += w * d.loss + wcf * dc.loss
            dz[1] += w * d.dp * pv * (1 - pv)
            dz[2] = wcf * dc.dp * cf * (1 - cf)
            let gap = 1 - (pv + cf)
            loss += constraint * abs(gap)
            let s = gap > 0 ? -constraint : (gap < 0 ? constraint : 0)
            dz[1] += s * pv * (1 - pv)
            dz[2] += s * cf * (1 - cf)
        case .chorusCVR:
            let un = sigmoid(z[2])
            // The click-through-unconverted loss δ(o·(1 − r), ô·û) on every row.
            let q2 = pc * un
            let ctun = clampedBCE(q2, o * (1 - r))
            loss += ctun.loss
            dz[0] += ctun.dp * q2 * (1 - pc)
            dz[2] = ctun.dp * q2 * (1 - un)
            // The soft alignment on unclicked rows, weighted 1/(1 − ô): each tower learns from the
            // other's prediction as a soft label, δ(1 − û, r̂) + δ(1 − r̂, û), targets held constant.
            let wu = (1 - o) / max(1 - pcHeld, clip)
            if wu > 0 {
                let unHeld = held == nil ? un : sigmoid(h[2]), pvHeld = held == nil ? pv : sigmoid(h[1])
                let a = clampedBCE(pv, 1 - unHeld), b = clampedBCE(un, 1 - pvHeld)
                loss += wu * (a.loss + b.loss)
                dz[1] += wu * a.dp * pv * (1 - pv)
                dz[2] += wu * b.dp * un * (1 - un)
            }
        }
        return (loss, dz)
    }

    /// Fills each tower's dL/dlogit (`ws[k].dz`, divided by `divisor`, the batch's rows) for
    /// `rows` of `t` from the logits of the forward pass; returns the rows' summed loss.
    func fill<Scalar: BinaryFloatingPoint>(_ t: Table, rows: Range<Int>, _ ws: [DeepWorkspace<Scalar>], divisor: Int, clickedWeight: Double) -> Double {
        let conversions = t.conversions ?? []
        var total = 0.0
        let scale = 1 / Double(divisor)
        for (j, r) in rows.enumerated() {
            var z = SIMD4<Double>()
            for k in 0..<ws.count { z[k] = Double(ws[k].logit[j]) }
            let o = Double(t.labels[r]), y = conversions.isEmpty ? 0 : Double(conversions[r])
            let (loss, dz) = row(z, click: o, conversion: y, clickedWeight: clickedWeight)
            total += loss
            for k in 0..<ws.count { ws[k].dz[j] = Scalar(dz[k] * scale) }
        }
        return total
    }

    /// n / (clicked rows among `rows`), or 0 when none is clicked.
    static func clickedWeight(_ t: Table, rows: Range<Int>) -> Double {
        var clicked = 0
        for r in rows where t.labels[r] > 0.5 { clicked += 1 }
        return clicked > 0 ? Double(rows.count) / Double(clicked) : 0
    }
}

@inline(__always)
func sigmoid(_ z: Double) -> Double { z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)) }

/// The log loss of logit `z` against label `y`, computed stably.
@inline(__always)
func logLoss(logit z: Double, _ y: Double) -> Double { max(z, 0) - z * y + log1p(exp(-abs(z))) }

/// The binary cross-entropy δ(y, p) = −y·log p − (1 − y)·log(1 − p) with p clamped to
/// [1e-7, 1 − 1e-7], and its derivative in p (0 where the clamp binds).
@inline(__always)
func clampedBCE(_ p: Double, _ y: Double) -> (loss: Double, dp: Double) {
    let lo = 1e-7, hi = 1 - 1e-7
    guard p >= lo && p <= hi else {
        let c = min(max(p, lo), hi)
        return (-(y * log(c) + (1 - y) * log(1 - c)), 0)
    }
    return (-(y * log(p) + (1 - y) * log(1 - p)), -y / p + (1 - y) / (1 - p))
}

extension DeepModel {
    /// A conversion model's batch loss over every row of `t` (the batch mean), with the held
    /// quantities (see `ConversionObjective.row`) from the logits `held` (towers × rows) when given.
    public func conversionLoss(_ t: Table, objective: ConversionObjective, held: [[Double]]? = nil) -> Double {
        let z = towerLogits(t)
        let weight = ConversionObjective.clickedWeight(t, rows: 0..<t.rows)
        var total = 0.0
        for r in 0..<t.rows {
            var zr = SIMD4<Double>(), hr = SIMD4<Double>()
            for k in 0..<z.count { zr[k] = z[k][r]; hr[k] = held?[k][r] ?? z[k][r] }
            total += objective.row(zr, click: Double(t.labels[r]), conversion: Double(t.conversions?[r] ?? 0), clickedWeight: weight,
                                   held: held == nil ? nil : hr).loss
        }
        return total / Double(t.rows)
    }

    /// Gradients of a conversion model's batch loss over `rows` (one thread), for tests; the
    /// loss is the batch mean.
    public func conversionGradient(_ t: Table, rows: Range<Int>, objective: ConversionObjective) -> DeepGradient<Scalar> {
        let g = DeepGradient<Scalar>(architecture, slots: slots)
        let ws = (0..<architecture.towers).map { _ in DeepWorkspace<Scalar>(architecture, rows: rows.count) }
        forwardTowers(t, rows: rows, ws)
        g.loss = objective.fill(t, rows: rows, ws, divisor: rows.count, clickedWeight: ConversionObjective.clickedWeight(t, rows: rows))
        backwardTowers(t, rows: rows, ws, into: g)
        g.loss /= Double(rows.count)
        return g
    }
}
