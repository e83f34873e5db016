"""The hall controller: issues every number, decides who is called next, keeps the hall's record."""
