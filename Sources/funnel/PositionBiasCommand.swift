import ArgumentParser
import Foundation
import FunnelBase
import FunnelOPE
import FunnelPipeline

extension PositionBias.Method: ExpressibleByArgument {}

struct PositionBiasCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "position-bias",
        abstract: "Estimate examination propensities per position and the debiased click-through per variant and item.")

    @OptionGroup var input: InputOptions

    @Option(help: "funnel.yaml: counting rules and the position_bias section (floor, randomized_context, ranker_context).")
    var config: String?

    @Option(help: "randomized (shuffled traffic), em (regression-EM under the position-based model) or harvesting (one item at several positions by several rankers).")
    var method: PositionBias.Method = .em

    @Option(help: "Which impressions were shown in shuffled order: key=value of the impression's context (overrides position_bias.randomized_context).")
    var randomized: String?

    @Option(help: "Context key that names the ranker (overrides position_bias.ranker_context); else the impression's variant.")
    var rankerContext: String?

    @Option(help: "Clip propensities below this floor in the debiased click-through (overrides position_bias.floor).")
    var floor: Double?

    @Option(help: "Highest position to estimate.")
    var maxPosition: Int = 10

    @Option(help: "Bootstrap draws over users for the em and harvesting intervals (0: none).")
    var bootstrap: Int = 200

    @Option(help: "Seed of the bootstrap.")
    var seed: UInt64 = 1

    @Option(help: "Two-sided interval level is 1 − alpha.")
    var alpha: Double = 0.05

    @Option(help: "Items listed per variant (most impressions first).")
    var topItems: Int = 20

    @Option(help: "Write every item's naive and debiased click-through per variant to this CSV.")
    var itemsOut: String?

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    func validate() throws {
        try input.requireEvents()
        if let floor, !(floor > 0 && floor <= 1) { throw ValidationError("--floor must be in (0, 1]") }
        if let randomized, randomized.split(separator: "=", omittingEmptySubsequences: false).count != 2 {
            throw ValidationError("--randomized must be key=value (a context key and the value that marks shuffled traffic)")
        }
        if maxPosition < 2 { throw ValidationError("--max-position must be at least 2") }
        if !(alpha > 0 && alpha < 1) { throw ValidationError("--alpha must be in (0, 1)") }
        if bootstrap < 0 { throw ValidationError("--bootstrap must be ≥ 0") }
    }

    func run() throws {
        var job = PositionBiasJob(source: input.source)
        job.configPath = config
        job.method = method
        job.randomized = randomized
        job.rankerContext = rankerContext
        job.floor = floor
        job.maxPosition = maxPosition
        job.bootstrap = bootstrap
        job.seed = seed
        job.alpha = alpha
        job.topItems = topItems
        job.allItems = itemsOut != nil
        let result = try job.run()
        if let note = quarantineNote(result.quarantined, input.events.joined(separator: ", ")) { printError(note) }
        if let itemsOut, let all = result.itemRows {
            var csv = "variant,item_id,impressions,clicks,ctr,ips_ctr\n"
            for row in all {
                let cells = ["variant", "item_id", "impressions", "clicks", "ctr", "ips_ctr"].map { key -> String in
                    switch row[key] {
                    case .string(let s)?: return s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
                    case .some(let v): return v.serialized()
                    case nil: return ""
                    }
                }
                csv += cells.joined(separator: ",") + "\n"
            }
            guard FileManager.default.createFile(atPath: itemsOut, contents: Data(csv.utf8)) else {
                throw CLIError("--items-out \(itemsOut): cannot write the file")
            }
        }
        if format == .json {
            print(result.document.serialized(pretty: true))
            return
        }
        let estimate = result.estimate
        let level = "\(Int(((1 - alpha) * 100).rounded())) %"
        print("position bias by \(method.rawValue): \(estimate.recordsUsed) of \(result.rounds) rounds used (served impressions after duplicates, bots and viewability; \(result.collapsed) of them re-show an item the report counts once); rankers: \(result.rankers.joined(separator: ", "))\n")
        var rows: [[String]] = [["position", "propensity", "\(level) interval", "naive ctr ratio", "impressions", "clicks"]]
        for k in estimate.propensities.indices {
            let ci = estimate.intervals[k].map { String(format: "[%.4f, %.4f]", $0.0, $0.1) } ?? "—"
            rows.append([String(k + 1), String(format: "%.4f", estimate.propensities[k]), ci, String(format: "%.4f", estimate.naive[k]),
                         String(estimate.impressions[k]), String(estimate.clicks[k])])
        }
        print(TextReportTable.render(rows))
        print("\ndebiased click-through (clicks weighted by 1/max(propensity, \(result.floor))):\n")
        var vrows: [[String]] = [["variant", "impressions", "clicks", "ctr", "ips ctr"]]
        for (name, d) in result.groups {
            vrows.append([name, String(d.impressions), String(d.clicks), String(format: "%.5f", d.naive), String(format: "%.5f", d.ips)])
        }
        print(TextReportTable.render(vrows))
        for w in result.warnings { print("warning: \(w)") }
    }
}
