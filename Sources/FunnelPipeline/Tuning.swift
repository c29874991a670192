import Foundation
import FunnelBase
import FunnelModels

/// A search over a click model's learning rate × L2 (× factors) on the validation set: every
/// trial is a `TrainJob` with early stopping on the same tables (read once); the trial with the
/// lowest validation log loss wins.
public struct TuneJob: Sendable {
    /// The settings every trial starts from (data, model, everything not searched).
    public var base: TrainJob
    /// Learning rates tried (FTRL's α for lr). Empty: `defaultLearningRates`.
    public var learningRates: [Double] = []
    /// L2 strengths tried: the embedding L2 for fm, deepfm and dcnv2, FTRL's L2 for lr. Empty: `defaultL2s`.
    public var l2s: [Double] = []
    /// Factor counts tried (fm, deepfm, dcnv2). Empty: the base's factors only.
    public var factors: [Int] = []
    /// The most trainings; a larger grid is sampled (without repeats, by `seed`).
    public var budget = 12
    public var seed: UInt64 = 1

    public init(base: TrainJob) { self.base = base }

    /// The documented default grid of learning rates: around the optimiser's usual rate, ×3 apart.
    public static func defaultLearningRates(_ job: TrainJob) -> [Double] {
        if job.model == .lr { return [0.02, 0.05, 0.1, 0.2] }
        return job.mainOptimizer == .adagrad ? [0.01, 0.03, 0.1] : [3e-4, 1e-3, 3e-3]
    }

    /// The documented default grid of L2 strengths.
    public static func defaultL2s(_ job: TrainJob) -> [Double] {
        job.model == .lr ? [0.1, 1, 10] : [0, 1e-4, 1e-3]
    }

    /// One setting of the grid.
    public struct Trial: Sendable, Equatable {
        public var learningRate: Double
        public var l2: Double
        public var factors: Int
        public init(learningRate: Double, l2: Double, factors: Int) { self.learningRate = learningRate; self.l2 = l2; self.factors = factors }
    }

    /// One trial's outcome.
    public struct Outcome: Sendable {
        public var trial: Trial
        public var epochsRun: Int
        public var bestEpoch: Int
        public var validationLogLoss: Double
        public var validationAUC: Double?
        public var seconds: Double
    }

    /// The trials to run: the grid in order (learning rate, then L2, then factors), or `budget` of
    /// them drawn by `seed` and kept in grid order.
    public func trials() -> [Trial] {
        let rates = learningRates.isEmpty ? Self.defaultLearningRates(base) : learningRates
        let strengths = l2s.isEmpty ? Self.defaultL2s(base) : l2s
        let sizes = factors.isEmpty || base.model == .lr ? [base.factors] : factors
        var grid: [Trial] = []
        for r in rates { for l in strengths { for k in sizes { grid.append(Trial(learningRate: r, l2: l, factors: k)) } } }
        guard grid.count > budget else { return grid }
        // A partial Fisher–Yates shuffle picks `budget` distinct positions.
        var rng = SplitMix64(seed: seed)
        var order = Array(grid.indices)
        for i in 0..<budget {
            let j = i + Int(rng.next() % UInt64(order.count - i))
            order.swapAt(i, j)
        }
        return order[..<budget].sorted().map { grid[$0] }
    }

    /// The training job of `trial`.
    public func job(_ trial: Trial) -> TrainJob {
        var job = base
        job.factors = trial.factors
        if base.model == .lr {
            job.alpha = trial.learningRate
            job.l2 = trial.l2
        } else {
            job.learningRate = trial.learningRate
            job.embeddingL2 = trial.l2
        }
        return job
    }

    /// The search's result: every trial's outcome in the order run, and the best trial's training.
    public struct Result: Sendable {
        public var outcomes: [Outcome]
        public var best: Int
        public var model: TrainJob.Result
    }

    /// Reads the tables once and runs the trials; `onTrial` sees each outcome as it finishes,
    /// `note` the reading's lines.
    public func run(note: (String) -> Void = { _ in }, onTrial: (Outcome) -> Void = { _ in }) throws(PipelineError) -> Result {
        guard base.valid != nil else { throw PipelineError("tuning compares settings on a validation set: pass --valid") }
        let tables = try base.readTables(note: note)
        var outcomes: [Outcome] = []
        var best: (index: Int, result: TrainJob.Result)? = nil
        for trial in trials() {
            let clock = ContinuousClock.now
            let result = try job(trial).train(tables)
            let loss = result.validationLogLoss ?? result.validation?.logloss ?? .infinity
            let outcome = Outcome(trial: trial, epochsRun: result.epochsRun, bestEpoch: result.bestEpoch, validationLogLoss: loss,
                                  validationAUC: result.validation?.auc, seconds: seconds(since: clock))
            outcomes.append(outcome)
            onTrial(outcome)
            if best.map({ loss < outcomes[$0.index].validationLogLoss }) ?? true { best = (outcomes.count - 1, result) }
        }
        guard let best else { throw PipelineError("the grid is empty: give at least one learning rate and one L2") }
        return Result(outcomes: outcomes, best: best.index, model: best.result)
    }
}
