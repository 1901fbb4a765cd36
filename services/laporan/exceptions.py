from bersinar.errors import ValidationFailed


class InvalidPeriod(ValidationFailed):
    title = "Periode tidak valid"
