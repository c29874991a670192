import Foundation
import FunnelBase

/// Runs `count` simulations on both cores and returns every outcome in order. A calibration is
/// reported over all the simulations it asked for or not at all: when any fails, the error says
/// how many did and gives the first reason.
func runSimulations<Outcome: Sendable>(_ count: Int, _ body: @Sendable (Int) throws(PipelineError) -> Outcome) throws(PipelineError) -> [Outcome] {
    let box = ResultSlots<Result<Outcome, PipelineError>>(count: count)
    DispatchQueue.concurrentPerform(iterations: count) { k in
        do throws(PipelineError) {
            box.set(k, .success(try body(k)))
        } catch {
            box.set(k, .failure(error))
        }
    }
    var outcomes: [Outcome] = []
    var failures: [PipelineError] = []
    for r in box.values() {
        switch r {
        case .success(let o): outcomes.append(o)
        case .failure(let e): failures.append(e)
        }
    }
    if let first = failures.first {
        throw PipelineError("\(failures.count) of \(count) simulations failed, so no result is reported; the first: \(first.description)")
    }
    return outcomes
}
