import ArgumentParser
import Foundation
import FunnelBase
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelPipeline
import FunnelOPE
import FunnelReport

struct PositionBiasCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "position-bias",
        abstract: "Estimate examination propensities per position and the debiased click-through per variant and item.")

    @OptionGroup var input: InputOptions

    @Option(help: "funnel.yaml: counting rules and the position_bias section (floor, randomized_context, ranker_context).")
    var config: String?

    @Option(help: "randomized (shuffled traffic), em (regression-EM under the position-based model) or harvesting (one item at several positions by several rankers).")
    var method: String = "em"

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
    var format: String = "text"

    func validate() throws {
        if PositionBias.Method(rawValue: method) == nil { throw ValidationError("--method must be randomized, em or harvesting (got '\(method)')") }
        if format != "text" && format != "json" { throw ValidationError("--format must be text or json") }
        if let floor, !(floor > 0 && floor <= 1) { throw ValidationError("--floor must be in (0, 1]") }
        if let randomized, randomized.split(separator: "=", omittingEmptySubsequences: false).count != 2 {
            throw ValidationError("--randomized must be key=value (a context key and the value that marks shuffled traffic)")
        }
        if maxPosition < 2 { throw ValidationError("--max-position must be at least 2") }
        if !(alpha > 0 && alpha < 1) { throw ValidationError("--alpha must be in (0, 1)") }
        if bootstrap < 0 { throw ValidationError("--bootstrap must be ≥ 0") }
    }

    func run() throws {
        var cfg = try loadConfig(config)
        if let randomized { cfg.randomizedContext = randomized }
        if let rankerContext { cfg.rankerContext = rankerContext }
        if let floor { cfg.positionBiasFloor = floor }
        let log = try readEvents(input)
        warnQuarantined(log, input.events.joined(separator: ", "))
        let (records, rounds, rankers) = PositionBiasReport.records(log, config: cfg)
        let estimate: PositionBias.Estimate
        do {
            estimate = try PositionBias.estimate(records, method: PositionBias.Method(rawValue: method)!, maxPosition: maxPosition,
                                                 bootstrap: bootstrap, alpha: alpha, seed: seed)
        } catch {
            throw CLIError("\(input.events.joined(separator: ", ")): \(error.description)")
        }
        // Rounds are grouped as the report analyses them (rule 7: assigned, not leaked, from the
        // first exposure on, no variant mismatch); the rest form one more group. Without an
        // experiment to analyse, every round is in one group.
        var groups: [String]
        let groupOf: (Round) -> Int?
        var notes: [String] = []
        if let attribution = try? Attributor.run(log, config: cfg) {
            let analysed = PositionBiasReport.RoundGroups(attribution, log: log)
            groups = analysed.names + ["(not analysed)"]
            let rest = analysed.names.count
            groupOf = { analysed.group($0, log: log) ?? rest }
        } else {
            groups = ["(all)"]
            groupOf = { _ in 0 }
            notes.append("no single experiment to analyse (set ab_testing.experiment in funnel.yaml to choose one): every round is in one group")
        }
        let floorValue = cfg.positionBiasFloor
        let perGroup = PositionBiasReport.debiased(rounds, propensities: estimate.propensities, floor: floorValue,
                                                   groups: groups.count, group: groupOf)
        let items = PositionBiasReport.items(rounds, log: log, propensities: estimate.propensities, floor: floorValue,
                                             groups: groups, limit: topItems, group: groupOf)
        if let itemsOut {
            let all = PositionBiasReport.items(rounds, log: log, propensities: estimate.propensities, floor: floorValue,
                                               groups: groups, limit: Int.max, group: groupOf)
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
        let variants: [(String, JSONValue)] = groups.indices.compactMap { g in
            let d = perGroup[g]
            guard d.impressions > 0 else { return nil }
            return (groups[g], .object([("impressions", .int(d.impressions)), ("clicks", .int(d.clicks)),
                                         ("ctr", .number(d.naive)), ("ips_ctr", .number(d.ips))]))
        }
        let doc: JSONValue = .object([
            ("method", .string(method)),
            ("positions", PositionBiasReport.positionsJSON(estimate)),
            ("impressions_used", .int(estimate.recordsUsed)),
        ] + PositionBiasReport.roundsJSON(rounds) + [
            ("rankers", .array(rankers.map(JSONValue.string))),
            ("floor", .double(floorValue)),
            ("variants", .object(variants)),
            ("items", .array(items)),
            ("warnings", .array((estimate.warnings + notes).map(JSONValue.string))),
            ("settings", .object([("bootstrap", .int(bootstrap)), ("seed", .int(Int(seed))), ("alpha", .double(alpha)),
                                  ("randomized_context", .string(cfg.randomizedContext)), ("ranker_context", .string(cfg.rankerContext))])),
        ])
        if format == "json" {
            print(doc.serialized(pretty: true))
            return
        }
        let level = "\(Int(((1 - alpha) * 100).rounded())) %"
        let collapsed = rounds.filter(\.collapsed).count
        print("position bias by \(method): \(estimate.recordsUsed) of \(rounds.count) rounds used (served impressions after duplicates, bots and viewability; \(collapsed) of them re-show an item the report counts once); rankers: \(rankers.joined(separator: ", "))\n")
        var rows: [[String]] = [["position", "propensity", "\(level) interval", "naive ctr ratio", "impressions", "clicks"]]
        for k in estimate.propensities.indices {
            let ci = estimate.intervals[k].map { String(format: "[%.4f, %.4f]", $0.0, $0.1) } ?? "—"
            rows.append([String(k + 1), String(format: "%.4f", estimate.propensities[k]), ci, String(format: "%.4f", estimate.naive[k]),
                         String(estimate.impressions[k]), String(estimate.clicks[k])])
        }
        print(TextReportTable.render(rows))
        print("\ndebiased click-through (clicks weighted by 1/max(propensity, \(floorValue))):\n")
        var vrows: [[String]] = [["variant", "impressions", "clicks", "ctr", "ips ctr"]]
        for g in groups.indices where perGroup[g].impressions > 0 {
            let d = perGroup[g]
            vrows.append([groups[g], String(d.impressions), String(d.clicks), String(format: "%.5f", d.naive), String(format: "%.5f", d.ips)])
        }
        print(TextReportTable.render(vrows))
        for w in estimate.warnings + notes { print("warning: \(w)") }
    }
}
