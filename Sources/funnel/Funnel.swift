import ArgumentParser
import Foundation
import FunnelBase

@main
struct Funnel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "funnel",
        abstract: "Measure, explain and predict clicks and conversions.",
        subcommands: [Report.self, Summarize.self, Validate.self, Simulate.self, Demo.self, Calibrate.self, OPE.self, PositionBiasCommand.self, CalibrateOPE.self, ExportTraining.self, Train.self, Tune.self, Evaluate.self, Predict.self, Serve.self, Keys.self, Export.self]
    )
}

/// Writes to standard error.
func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
