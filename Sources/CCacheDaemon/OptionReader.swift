import Glibc
import Logging

/// A usage mistake on a command line, worded for the person who typed it.
public struct UsageError: Error, Sendable {
    public let message: String

    public init(message: String) { self.message = message }
}

/// Reads `--name value` and `--name=value` options one at a time: the small parser `ccached` and
/// `ccached-door` share (neither loads Foundation or swift-argument-parser: a daemon's start-up is
/// measured in milliseconds). A value is taken as it is, so `--daemon-arg --idle-timeout=5` passes
/// `--idle-timeout=5` on whole.
public struct OptionReader {
    private let arguments: [String]
    private var index = 0
    /// The value of a `--name=value` just read, until the option takes it.
    private var inlineValue: String?

    public init(_ arguments: [String]) {
        self.arguments = arguments
    }

    /// The next option's name, or nil at the end. A `--name=value` left with its value unread (an
    /// option that takes none) is a mistake.
    public mutating func next() throws(UsageError) -> String? {
        if let unread = inlineValue.take() { throw UsageError(message: "unknown argument '\(unread)'") }
        guard index < arguments.count else { return nil }
        let argument = arguments[index]
        index += 1
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
            inlineValue = String(argument[argument.index(after: equals)...])
            return String(argument[..<equals])
        }
        return argument
    }

    /// The value of option `name`.
    public mutating func value(for name: String) throws(UsageError) -> String {
        if let value = inlineValue.take() { return value }
        guard index < arguments.count else { throw UsageError(message: "\(name) needs a value") }
        defer { index += 1 }
        return arguments[index]
    }

    /// The value of option `name`, which must be one of `choices`.
    public mutating func choice(for name: String, among choices: [String]) throws(UsageError) -> String {
        let text = try value(for: name)
        guard choices.contains(text) else {
            let listed = choices.dropLast().joined(separator: ", ") + " or " + (choices.last ?? "")
            throw UsageError(message: "\(name) is \(listed), not '\(text)'")
        }
        return text
    }

    /// The value of option `name` as a whole number within `range`.
    public mutating func number<T: FixedWidthInteger>(for name: String, in range: ClosedRange<T>)
        throws(UsageError) -> T
    {
        let text = try value(for: name)
        guard let parsed = T(text), range.contains(parsed) else {
            throw UsageError(
                message: "\(name) takes a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return parsed
    }
}

extension OptionReader {
    /// Reads `arguments` into `options`, one option at a time: `apply` sets the option it is given
    /// from the reader and returns false for a name it does not know (a usage mistake). Nil for
    /// `-h` or `--help`.
    public static func read<Options>(
        _ arguments: [String], into options: Options,
        _ apply: (_ name: String, _ options: inout Options, _ reader: inout OptionReader) throws(UsageError) -> Bool
    ) throws(UsageError) -> Options? {
        var options = options
        var reader = OptionReader(arguments)
        while let name = try reader.next() {
            if name == "-h" || name == "--help" { return nil }
            guard try apply(name, &options, &reader) else { throw UsageError(message: "unknown argument '\(name)'") }
        }
        return options
    }

    /// The value of option `name` as a swift-log level (`trace` … `critical`).
    public mutating func logLevel(for name: String) throws(UsageError) -> Logger.Level {
        let text = try choice(for: name, among: Logger.Level.allCases.map(\.rawValue))
        return Logger.Level.allCases.first { $0.rawValue == text } ?? .info
    }

    /// Parses this process's arguments with `parse`: for `--help` (`parse` returns nil) prints
    /// `usage` and exits 0; for a mistake prints it with `synopsis` and a pointer to `--help` on
    /// standard error and exits 64 (EX_USAGE).
    public static func parseCommandLine<Options>(
        program: String, usage: String, synopsis: String, _ parse: ([String]) throws(UsageError) -> Options?
    ) -> Options {
        do {
            guard let options = try parse(Array(CommandLine.arguments.dropFirst())) else {
                print(usage)
                exit(0)
            }
            return options
        } catch {
            let line = Array("\(program): \(error.message)\nUsage: \(synopsis); see '\(program) --help'.\n".utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            exit(64)
        }
    }
}
