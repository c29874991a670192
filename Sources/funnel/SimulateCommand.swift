import ArgumentParser

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Simulate an event log with known ground truth.")
    func run() throws { throw CLIError("not built yet") }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Simulate the clickbait scenario and print its report.")
    func run() throws { throw CLIError("not built yet") }
}
