import Testing
@testable import NinePClient

@Test func placeholderBuilds() { #expect(Bool(true)) }
