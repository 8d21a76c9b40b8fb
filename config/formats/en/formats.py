# English long dates spelled out ("October 5, 2026"), as the French ones are ("5 octobre 2026").
DATE_FORMAT = "F j, Y"
