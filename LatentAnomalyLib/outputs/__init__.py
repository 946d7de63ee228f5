"""What a detection gives back: its files (:mod:`.detection`), the DICOM SEG, and the viewing conventions and
montage figure shared by every viewer."""
