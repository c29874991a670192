import Foundation
import FunnelBase
import FunnelModels
import FunnelPipeline
import FunnelTestSupport
import Testing

/// Training that stops by itself, the output bias's start, and the search of `funnel tune`.
@Suite(.timeLimit(.minutes(5)))
struct TrainingTests {
    /// A CSV of `rows` rows: a categorical `item` of 60 values (half of them seen about once),
    /// a numeric `x`, and clicks drawn from a logistic model of both (seeded).
    static func table(rows: Int, seed: UInt64) -> String {
        var rng = SplitMix64(seed: seed)
        var text = "click,item,x\n"
        for _ in 0..<rows {
            let item = rng.unit() < 0.5 ? Int(rng.next() % 30) : 30 + Int(rng.next() % 3000)
            let x = rng.unit() * 4 - 2
            let logit = -2.0 + (item < 30 ? Double(item % 7) * 0.3 - 0.9 : 0) + 0.8 * x
            let click = rng.unit() < 1 / (1 + exp(-logit)) ? 1 : 0
            text += "\(click),i\(item),\(x)\n"
        }
        return text
    }

    static func job(_ folder: TemporaryFolder, model: ModelKind) throws -> TrainJob {
        var job = TrainJob(data: try folder.write("train.csv", table(rows: 3000, seed: 1)))
        job.valid = try folder.write("valid.csv", table(rows: 2000, seed: 2))
        job.categorical = ["item"]
        job.numeric = ["x"]
        job.model = model
        job.factors = 2
        job.hidden = [8]
        job.batchSize = 64
        return job
    }

    /// The epochs' validation log losses as the progress lines report them.
    static func validationLosses(_ lines: [String]) -> [Double] {
        lines.compactMap { line in
            guard line.hasPrefix("epoch "), let r = line.range(of: "validation log loss ") else { return nil }
            return Double(line[r.upperBound...])
        }
    }

    /// With a validation set and no --epochs, training runs until two epochs bring no better
    /// validation log loss (at most 20), and the model kept is the best epoch's: its validation
    /// log loss, measured anew, is the smallest of those reported.
    @Test(arguments: [ModelKind.fm, .deepfm])
    func stopsEarlyAndKeepsTheBestEpoch(model: ModelKind) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var job = try Self.job(folder, model: model)
        job.embeddingL2 = 0
        job.learningRate = model == .fm ? 0.2 : 0.01
        var lines: [String] = []
        let result = try job.run { lines.append($0) }
        let losses = Self.validationLosses(lines)
        #expect(losses.count == result.epochsRun)
        #expect(result.epochsRun <= TrainJob.defaultMaxEpochs)
        let best = try #require(losses.indices.min { losses[$0] < losses[$1] })
        #expect(result.bestEpoch == best + 1)
        if result.epochsRun < TrainJob.defaultMaxEpochs {
            #expect(result.epochsRun == result.bestEpoch + job.patience, "stopped \(job.patience) epochs after the best")
        }
        let valid = try readModelTable(path: job.valid!, format: .csv, spec: result.model.spec, configPath: nil, fit: false, group: nil,
                                       makeSpec: { _ in result.model.spec }).0
        let again = ClickMetrics.evaluate(labels: valid.labels, predictions: result.model.predict(valid)).logloss
        #expect(abs(again - losses[best]) < 5e-7, "kept model: \(again), best epoch: \(losses[best])")
    }

    /// The bias starts at log(c/(1 − c)) for the training click-through rate c; with `zero`, at 0.
    @Test func biasStartsAtTheClickRatesLogit() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var job = try Self.job(folder, model: .fm)
        job.epochs = 1
        let text = Self.table(rows: 3000, seed: 1)
        let clicks = text.split(separator: "\n").dropFirst().filter { $0.hasPrefix("1,") }.count
        let c = Double(clicks) / 3000
        let result = try job.run()
        // FM weights in file order: w (one per slot), the bias, then V.
        let slots = result.initial.spec.slots
        #expect(abs(Double(result.initial.weights[slots]) - log(c / (1 - c))) < 1e-6)
        job.biasInit = .zero
        #expect(try job.run().initial.weights[slots] == 0)
    }

    /// A grid larger than the budget is sampled: `budget` distinct settings of the grid, the same
    /// for the same seed.
    @Test func theGridIsSampledWithinTheBudget() throws {
        var base = TrainJob(data: "unused.csv")
        base.model = .deepfm
        var tune = TuneJob(base: base)
        let full = tune.trials()
        #expect(full.count == 9, "3 learning rates × 3 L2 strengths")
        #expect(Set(full.map { "\($0.learningRate) \($0.l2)" }).count == 9)
        tune.factors = [4, 8]
        tune.budget = 5
        let picked = tune.trials()
        #expect(picked.count == 5)
        #expect(Set(picked.map { "\($0.learningRate) \($0.l2) \($0.factors)" }).count == 5)
        #expect(picked.allSatisfy { [3e-4, 1e-3, 3e-3].contains($0.learningRate) && [0, 1e-4, 1e-3].contains($0.l2) && [4, 8].contains($0.factors) })
        #expect(tune.trials() == picked)
        tune.seed = 2
        #expect(tune.trials() != picked)
        base.model = .lr
        #expect(TuneJob(base: base).job(TuneJob.Trial(learningRate: 0.1, l2: 3, factors: 8)).alpha == 0.1)
    }

    /// The search keeps the trial with the lowest validation log loss, and the model it returns
    /// has that loss on the validation set.
    @Test func tuningKeepsTheBestTrial() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var tune = TuneJob(base: try Self.job(folder, model: .fm))
        tune.learningRates = [0.01, 0.2]
        tune.l2s = [0, 1e-2]
        let result = try tune.run()
        #expect(result.outcomes.count == 4)
        let losses = result.outcomes.map(\.validationLogLoss)
        #expect(losses[result.best] == losses.min())
        #expect(Set(losses).count > 1, "the settings differ")
        let file = result.model.model
        #expect(file.optimizer?.learningRate == result.outcomes[result.best].trial.learningRate)
        #expect(file.optimizer?.embeddingL2 == result.outcomes[result.best].trial.l2)
        let valid = try readModelTable(path: tune.base.valid!, format: .csv, spec: file.spec, configPath: nil, fit: false, group: nil,
                                       makeSpec: { _ in file.spec }).0
        let again = ClickMetrics.evaluate(labels: valid.labels, predictions: file.predict(valid)).logloss
        #expect(abs(again - losses[result.best]) < 5e-7)
    }
}
