"""Citizens' phone pages (issue 14): scan the door's QR code to take a number, follow a ticket live."""
