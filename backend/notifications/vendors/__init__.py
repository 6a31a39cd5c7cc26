"""Push channels of the phone makers, beside FCM (issue 19): most Android phones sold in mainland
China have no Google services. One module per channel, each with `from_settings(settings)` (None
when its credentials are not set) and a provider class speaking the vendor's public HTTP API; a
channel that reports delivery also has `parse_receipts(body, content_type)`."""
