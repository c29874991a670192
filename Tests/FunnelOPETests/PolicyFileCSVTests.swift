import Foundation
import FunnelOPE
import FunnelTestSupport
import Testing

/// Policy files go through Funnel's CSV tokenizer: quoted item ids holding commas and doubled quotes,
/// CRLF line ends and a byte-order mark; a malformed record names its line.
struct PolicyFileCSVTests {
    let data = LoggedBandit(items: ["a,b", "say \"x\""], actions: [0, 1], positions: [0, 0], rewards: [1, 0],
                            propensities: [0.5, 0.5], requestIDs: nil)

    @Test("quoted item ids with commas and doubled quotes name the logs' items")
    func quotedItems() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let text = "\u{FEFF}item_id,position,probability\r\n\"a,b\",1,0.25\r\n\"say \"\"x\"\"\",1,0.75\r\n\r\n"
        let path = try folder.write("policy.csv", text)
        let policy = try EvaluationPolicy.read(path: path, for: data)
        #expect(policy.table == [[0.25, 0.75]])
    }

    @Test("a malformed record is an error naming its line")
    func malformed() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = try folder.write("policy.csv", "item_id,position,probability\n\"a,b\",1,0.25\n\"say\"x,1,0.75\n")
        do {
            _ = try EvaluationPolicy.read(path: path, for: data)
            Issue.record("a malformed policy file was read")
        } catch {
            #expect(error.description.contains("\(path): line 3: text after the closing quote"))
        }
    }
}
